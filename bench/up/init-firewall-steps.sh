#!/bin/bash
# The start-up steps of Anthropic's Claude Code devcontainer firewall (init-firewall.sh,
# github.com/anthropics/claude-code, .devcontainer), in its order, for bench/up/run:
#
#   flush iptables and ipset; allow DNS, SSH and loopback; `ipset create allowed-domains
#   hash:net`; GitHub's web + api + git ranges (IPv4), aggregated, one `ipset add` each;
#   for each domain `dig +short A`, one `ipset add` per address; the host network (/24 of
#   the default gateway) in and out; policies DROP; established; the set; REJECT.
#
# Differences, all on purpose:
#   - no network fetch: the GitHub /meta document is read from META (a saved copy) instead
#     of `curl https://api.github.com/meta`; it is checked with `jq -e` as the original does;
#   - ranges are aggregated with `aggregate -q` when it is installed (as in the original's
#     image), else with python3's ipaddress.collapse_addresses (IPv4 only, as aggregate);
#     the first line of output says which;
#   - the closing curl checks (example.com refused, api.github.com reached) are left out:
#     they measure the network, not the start-up.
#
# Usage (as root, inside a network namespace of its own: this REPLACES its iptables rules):
#   init-firewall-steps.sh META_JSON DOMAIN...
#   init-firewall-steps.sh --aggregate-only META_JSON   (prints the aggregated ranges; no kernel)
# With STEP_TIMES=FILE, appends "step microseconds" lines for each phase to FILE (bash's
# clock only: no process is started to take the times).
set -euo pipefail
IFS=$'\n\t'

aggregate_only=
if [ "${1:-}" = --aggregate-only ]; then aggregate_only=1; shift; fi
meta=${1:?usage: $0 [--aggregate-only] META_JSON DOMAIN...}
shift
domains=("$@")
[ -n "$aggregate_only" ] || [ "${#domains[@]}" -gt 0 ] || { echo "usage: $0 META_JSON DOMAIN..." >&2; exit 2; }

if command -v aggregate >/dev/null 2>&1; then
    aggregator=aggregate
    aggregate_v4() { aggregate -q; }
else
    aggregator="python3 ipaddress.collapse_addresses"
    py=/usr/bin/python3
    [ -x "$py" ] || py=python3
    aggregate_v4() {
        "$py" -c '
import ipaddress, sys
nets = []
for line in sys.stdin:
    line = line.strip()
    try:
        n = ipaddress.ip_network(line, strict=False)
    except ValueError:
        continue
    if n.version == 4:  # aggregate(1) handles IPv4 only; -q drops the rest quietly
        nets.append(n)
for n in ipaddress.collapse_addresses(nets):
    print(n)
'
    }
fi
# --aggregate-only: just the GitHub ranges as the set gets them (jq, then the aggregator),
# so that bench/up/run can time that pipeline on its own.
if [ -n "$aggregate_only" ]; then
    jq -r '(.web + .api + .git)[]' "$meta" | aggregate_v4
    exit 0
fi
echo "aggregating GitHub ranges with: $aggregator"

step_file=${STEP_TIMES:-}
last=${EPOCHREALTIME/./}
step() {
    local now=${EPOCHREALTIME/./}
    if [ -n "$step_file" ]; then echo "$1 $((now - last))" >> "$step_file"; fi
    last=$now
}

# Flush existing rules and delete existing ipsets (the original first saves Docker's DNS
# NAT rules to restore them; there are none here, but the save is part of its start-up).
DOCKER_DNS_RULES=$(iptables-save -t nat | grep "127\.0\.0\.11" || true)
iptables -F
iptables -X
iptables -t nat -F
iptables -t nat -X
iptables -t mangle -F
iptables -t mangle -X
ipset destroy allowed-domains 2>/dev/null || true
if [ -n "$DOCKER_DNS_RULES" ]; then
    echo "Restoring Docker DNS rules..."
    iptables -t nat -N DOCKER_OUTPUT 2>/dev/null || true
    iptables -t nat -N DOCKER_POSTROUTING 2>/dev/null || true
    echo "$DOCKER_DNS_RULES" | xargs -L 1 iptables -t nat
else
    echo "No Docker DNS rules to restore"
fi
step flush

# First allow DNS and localhost before any restrictions
iptables -A OUTPUT -p udp --dport 53 -j ACCEPT
iptables -A INPUT -p udp --sport 53 -j ACCEPT
iptables -A OUTPUT -p tcp --dport 22 -j ACCEPT
iptables -A INPUT -p tcp --sport 22 -m state --state ESTABLISHED -j ACCEPT
iptables -A INPUT -i lo -j ACCEPT
iptables -A OUTPUT -o lo -j ACCEPT
step first_rules

ipset create allowed-domains hash:net
step ipset_create

# GitHub's ranges: from the saved document instead of curl.
echo "Reading GitHub IP ranges from $meta..."
gh_ranges=$(cat "$meta")
if [ -z "$gh_ranges" ]; then
    echo "ERROR: Failed to fetch GitHub IP ranges"
    exit 1
fi
if ! echo "$gh_ranges" | jq -e '.web and .api and .git' >/dev/null; then
    echo "ERROR: GitHub API response missing required fields"
    exit 1
fi
echo "Processing GitHub IPs..."
while read -r cidr; do
    if [[ ! "$cidr" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}/[0-9]{1,2}$ ]]; then
        echo "ERROR: Invalid CIDR range from GitHub meta: $cidr"
        exit 1
    fi
    echo "Adding GitHub range $cidr"
    ipset add allowed-domains "$cidr"
done < <(echo "$gh_ranges" | jq -r '(.web + .api + .git)[]' | aggregate_v4)
step github_ranges

# Resolve and add other allowed domains
for domain in "${domains[@]}"; do
    echo "Resolving $domain..."
    ips=$(dig +short A "$domain")
    if [ -z "$ips" ]; then
        echo "ERROR: Failed to resolve $domain"
        exit 1
    fi
    while read -r ip; do
        if [[ ! "$ip" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]]; then
            echo "ERROR: Invalid IP from DNS for $domain: $ip"
            exit 1
        fi
        echo "Adding $ip for $domain"
        ipset add allowed-domains "$ip"
    done < <(echo "$ips")
done
step domains

# Get host IP from default route
HOST_IP=$(ip route | grep default | cut -d" " -f3)
if [ -z "$HOST_IP" ]; then
    echo "ERROR: Failed to detect host IP"
    exit 1
fi
HOST_NETWORK=$(echo "$HOST_IP" | sed "s/\.[0-9]*$/.0\/24/")
echo "Host network detected as: $HOST_NETWORK"
iptables -A INPUT -s "$HOST_NETWORK" -j ACCEPT
iptables -A OUTPUT -d "$HOST_NETWORK" -j ACCEPT
step host_network

# Set default policies to DROP first
iptables -P INPUT DROP
iptables -P FORWARD DROP
iptables -P OUTPUT DROP
# First allow established connections for already approved traffic
iptables -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
iptables -A OUTPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
# Then allow only specific outbound traffic to allowed domains
iptables -A OUTPUT -m set --match-set allowed-domains dst -j ACCEPT
# Explicitly REJECT all other outbound traffic for immediate feedback
iptables -A OUTPUT -j REJECT --reject-with icmp-admin-prohibited
step final_rules

echo "Firewall configuration complete"
