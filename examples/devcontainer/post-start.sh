#!/usr/bin/env bash
# fwctl-post-start: the devcontainer's postStartCommand, in place of init-firewall.sh.
#
# Runs as the sandbox user (node) and does the few things that need root through sudo,
# with exactly the command lines /etc/sudoers.d/fwctl allows:
#   1. copy the mounted API key to where only fwproxy can read it;
#   2. `fwctl up`: apply the policy (one atomic transaction), create the proxy CA if
#      missing, start the proxy as fwproxy, wait until it answers;
#   3. `fwctl env`: write the sandbox user's environment (proxy, CA bundle, base URL);
#   4. check that the sandbox user can read neither the key nor the CA key, and probe the
#      network as that user: example.com must fail, api.github.com must work.
# Every step prints one line; every failure one line that says what failed. The firewall
# goes up even when step 1 fails (the proxy then cannot start: proxied hosts stay
# unreachable), so a broken hook never leaves the container open.
#
# Everything is overridable, so the same script runs outside Docker (tests, a lab
# namespace); the defaults are the image's paths:
#   FWCTL=/usr/local/bin/fwctl            the binary
#   FWCTL_POLICY=/etc/fwctl/policy.toml   the policy
#   FWCTL_SECRET=/run/secrets/anthropic_api_key   the key as mounted ("" = no key to copy)
#   FWCTL_SECRET_DIR=/run/fwproxy         private directory of the proxy user
#   FWCTL_SECRET_COPY=$FWCTL_SECRET_DIR/anthropic_api_key   what the policy's file: secret names
#   FWCTL_PROXY_USER=fwproxy              owner of the copy
#   FWCTL_PROXY_GROUP=(its primary group) group of the copy
#   FWCTL_ENV_FILE=$HOME/.config/fwctl/env.sh   the environment file the shells source
#   FWCTL_COMMAND=up                      "apply" where the proxy is another host (the compose
#                                         sidecar variant: compose/agent-start.sh): firewall only
#   FWCTL_NO_PROXY_ADD=                   addresses appended to NO_PROXY/no_proxy in the env file
#                                         (the sidecar's endpoint, which is not on loopback)
#   FWCTL_LOG=/var/log/fwctl/proxy.log   the proxy's own output (`fwctl up --log`)
#   FWCTL_WATCH_LOG=/var/log/fwctl/watch.log   watch's own output (`fwctl up --watch-log`)
#   FWCTL_NETNS=                          passed as `fwctl up --netns`; network probes are
#                                         then skipped (run the hook inside the namespace instead)
#   FWCTL_VERIFY=1                        0: skip the network probes (no internet in tests)
#   FWCTL_SANDBOX_USER=                   run the checks as this user (the hook must run as root);
#                                         default: the user running the hook
#   FWCTL_CA_DIR=/var/lib/fwctl/ca        the policy's proxy.ca_dir (the CA key must stay private)
#   FWCTL_CLAUDE_SETTINGS=/etc/claude-code/managed-settings.json   compared with `fwctl env`
#   FWCTL_PROBE_DENY=https://example.com  must not be reachable
#   FWCTL_PROBE_ALLOW=https://api.github.com/zen   must be reachable
#   SUDO="sudo -n"                        how root steps run; "" when the hook runs as root
#                                         (the default for root)
set -euo pipefail

: "${HOME:=$(cd ~ && pwd)}"
FWCTL="${FWCTL:-/usr/local/bin/fwctl}"
FWCTL_POLICY="${FWCTL_POLICY:-/etc/fwctl/policy.toml}"
FWCTL_SECRET="${FWCTL_SECRET-/run/secrets/anthropic_api_key}"
FWCTL_SECRET_DIR="${FWCTL_SECRET_DIR:-/run/fwproxy}"
FWCTL_SECRET_COPY="${FWCTL_SECRET_COPY:-$FWCTL_SECRET_DIR/anthropic_api_key}"
FWCTL_PROXY_USER="${FWCTL_PROXY_USER:-fwproxy}"
FWCTL_PROXY_GROUP="${FWCTL_PROXY_GROUP:-$(id -gn "$FWCTL_PROXY_USER" 2>/dev/null || echo "$FWCTL_PROXY_USER")}"
FWCTL_ENV_FILE="${FWCTL_ENV_FILE:-$HOME/.config/fwctl/env.sh}"
FWCTL_COMMAND="${FWCTL_COMMAND:-up}"
FWCTL_NO_PROXY_ADD="${FWCTL_NO_PROXY_ADD:-}"
FWCTL_NETNS="${FWCTL_NETNS:-}"
FWCTL_LOG="${FWCTL_LOG:-/var/log/fwctl/proxy.log}"
FWCTL_WATCH_LOG="${FWCTL_WATCH_LOG:-/var/log/fwctl/watch.log}"
FWCTL_VERIFY="${FWCTL_VERIFY:-1}"
FWCTL_SANDBOX_USER="${FWCTL_SANDBOX_USER:-}"
FWCTL_CA_DIR="${FWCTL_CA_DIR:-/var/lib/fwctl/ca}"
FWCTL_CLAUDE_SETTINGS="${FWCTL_CLAUDE_SETTINGS:-/etc/claude-code/managed-settings.json}"
FWCTL_PROBE_DENY="${FWCTL_PROBE_DENY:-https://example.com}"
FWCTL_PROBE_ALLOW="${FWCTL_PROBE_ALLOW:-https://api.github.com/zen}"
if [ "${SUDO+set}" != set ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
fi
sudo_cmd=()
if [ -n "$SUDO" ]; then read -r -a sudo_cmd <<<"$SUDO"; fi

me="fwctl-post-start"
failed=0
say()  { printf '%s: %s\n' "$me" "$*"; }
warn() { printf '%s: warning: %s\n' "$me" "$*" >&2; }
err()  { printf '%s: error: %s\n' "$me" "$*" >&2; failed=1; }
die()  { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }
as_root() { "${sudo_cmd[@]}" "$@"; }

# The user the checks speak for: FWCTL_SANDBOX_USER, or whoever runs the hook.
checker="${FWCTL_SANDBOX_USER:-$(id -un)}"
as_sandbox() {
    if [ "$checker" != "$(id -un)" ]; then
        [ "$(id -u)" = 0 ] || die "FWCTL_SANDBOX_USER=$checker needs the hook to run as root"
        runuser -u "$checker" -- "$@"
    else
        "$@"
    fi
}

[ -x "$FWCTL" ] || die "$FWCTL is missing or not executable (FWCTL=...)"
say "$("$FWCTL" --version 2>&1 | head -n 1) ($FWCTL), policy $FWCTL_POLICY"

# 1. The key, for fwproxy only. The mount itself stays where it is: the host file's owner
#    and mode are the host's business (chown on a bind mount would change the host file,
#    and node often has the host user's uid). /run/secrets is 0700 root in the image, so
#    the sandbox user cannot reach it; the proxy reads the copy after dropping to fwproxy.
if [ -n "$FWCTL_SECRET" ]; then
    if ! as_root install -d -o "$FWCTL_PROXY_USER" -g "$FWCTL_PROXY_GROUP" -m 0700 "$FWCTL_SECRET_DIR"; then
        err "cannot create $FWCTL_SECRET_DIR for $FWCTL_PROXY_USER; going on so the firewall still goes up"
    elif ! as_root install -o "$FWCTL_PROXY_USER" -g "$FWCTL_PROXY_GROUP" -m 0400 "$FWCTL_SECRET" "$FWCTL_SECRET_COPY"; then
        err "cannot copy the API key from $FWCTL_SECRET: is the host file mounted (devcontainer.json \"mounts\")? Going on so the firewall still goes up, closed"
    else
        say "API key copied to $FWCTL_SECRET_COPY (owner $FWCTL_PROXY_USER, mode 0400)"
    fi
fi

# 2. Firewall, CA, proxy. `fwctl up` fails closed and says what failed in one line.
case "$FWCTL_COMMAND" in up|apply) ;; *) die "FWCTL_COMMAND must be up or apply, not $FWCTL_COMMAND" ;; esac
up=("$FWCTL_COMMAND" "$FWCTL_POLICY")
if [ -n "$FWCTL_NETNS" ]; then up+=(--netns "$FWCTL_NETNS"); fi
if [ "$FWCTL_COMMAND" = up ]; then up+=(--log "$FWCTL_LOG" --watch-log "$FWCTL_WATCH_LOG"); fi
if ! as_root "$FWCTL" "${up[@]}" </dev/null; then
    die "fwctl $FWCTL_COMMAND failed; the lines above say what failed and what state the firewall is in"
fi

# 3. The sandbox user's environment. Root runs `fwctl env` (the first run writes the CA
#    bundle next to proxy.ca_cert); the file is written by the sandbox user itself, whole,
#    then renamed into place: it lives in that user's HOME, where root must not write (a
#    symlink there would point root's writes anywhere).
if ! envtext="$(as_root "$FWCTL" env "$FWCTL_POLICY" --format sh </dev/null)"; then
    die "fwctl env failed (see the line above); the firewall is up, $FWCTL_ENV_FILE is unchanged"
fi
if [ -n "$FWCTL_NO_PROXY_ADD" ]; then
    envtext+=$'\n'"$(printf "export NO_PROXY=\"\$NO_PROXY,%s\" no_proxy=\"\$no_proxy,%s\"" "$FWCTL_NO_PROXY_ADD" "$FWCTL_NO_PROXY_ADD")"
fi
# shellcheck disable=SC2016  # $0 belongs to the inner sh
if ! printf '%s\n' "$envtext" | as_sandbox sh -c 'set -e; mkdir -p "$(dirname "$0")"; t="$0.tmp.$$"; cat >"$t"; chmod 0644 "$t"; mv -f "$t" "$0"' "$FWCTL_ENV_FILE"; then
    die "cannot write $FWCTL_ENV_FILE as $checker; the firewall is up"
fi
say "environment written to $FWCTL_ENV_FILE ($(printf '%s\n' "$envtext" | grep -c '^export ') variables; new shells read it)"

# The placeholder the sandbox holds must be one the policy knows, or every API request
# gets 403; and a value that is not the placeholder may be a real key in the sandbox.
# (Only where the policy has placeholders: the sidecar agent's policy has none.)
# shellcheck source=/dev/null
# Sourced as the sandbox user (it owns the file), never as root.
# shellcheck disable=SC2016
env_value() { as_sandbox bash -c 'set +u; . "$0"; printenv "$1"' "$FWCTL_ENV_FILE" "$1" || true; }
has_placeholders() { [ -r "$FWCTL_POLICY" ] && grep -q '^[[:space:]]*placeholder[[:space:]]*=' "$FWCTL_POLICY"; }
is_placeholder() { grep -qF "\"$1\"" "$FWCTL_POLICY"; }
if [ -n "${ANTHROPIC_API_KEY:-}" ] && has_placeholders && ! is_placeholder "$ANTHROPIC_API_KEY"; then
    err "ANTHROPIC_API_KEY in this environment is not a placeholder of $FWCTL_POLICY: requests will get 403, and if it is a real key, the sandbox holds it"
fi
if [ -r "$FWCTL_CLAUDE_SETTINGS" ] && command -v jq >/dev/null; then
    while IFS=$'\t' read -r name value; do
        if [ "$name" = ANTHROPIC_API_KEY ]; then
            ! has_placeholders || is_placeholder "$value" \
                || warn "$FWCTL_CLAUDE_SETTINGS: ANTHROPIC_API_KEY is not a placeholder of $FWCTL_POLICY"
            continue
        fi
        want="$(env_value "$name")"
        if [ -n "$want" ] && [ "$want" != "$value" ]; then
            warn "$FWCTL_CLAUDE_SETTINGS sets $name=$value but fwctl env says $want: Claude Code uses the former"
        fi
    done < <(jq -r '(.env // {}) | to_entries[] | "\(.key)\t\(.value)"' "$FWCTL_CLAUDE_SETTINGS")
fi

# 4a. What the sandbox user must not read (root reads everything: nothing to check then).
if [ "$(as_sandbox id -u)" = 0 ]; then
    say "checks run as root: skipping the read checks (set FWCTL_SANDBOX_USER to check a user)"
else
    readable=0
    for f in "$FWCTL_SECRET" "$FWCTL_SECRET_COPY" "$FWCTL_CA_DIR/ca.key"; do
        if [ -n "$f" ] && as_sandbox test -r "$f"; then
            err "$checker can read $f: it must be reachable by root and $FWCTL_PROXY_USER only (README: Troubleshooting)"
            readable=1
        fi
    done
    [ "$readable" = 1 ] || say "$checker can read neither the API key nor the CA key"
fi

# 4b. The network, as the sandbox user with its environment, like init-firewall.sh's check.
#     Needs the internet; FWCTL_VERIFY=0 skips it.
probe() {  # probe CURL-ARGS...: curl as the sandbox user, with the environment file sourced
    # shellcheck disable=SC2016  # $0 and $@ belong to the inner bash
    as_sandbox bash -c 'set -a; . "$0"; set +a; exec curl "$@"' "$FWCTL_ENV_FILE" "$@"
}
if [ "$FWCTL_VERIFY" = 0 ]; then
    say "network probes skipped (FWCTL_VERIFY=0)"
elif [ -n "$FWCTL_NETNS" ]; then
    say "network probes skipped: they would run outside $FWCTL_NETNS (run the hook inside it instead)"
else
    if probe -sS --max-time 5 -o /dev/null "$FWCTL_PROBE_DENY" 2>/dev/null; then
        err "$FWCTL_PROBE_DENY is reachable through the proxy: the policy lets everything through?"
    elif probe -sS --max-time 5 --noproxy '*' -o /dev/null "$FWCTL_PROBE_DENY" 2>/dev/null; then
        err "$FWCTL_PROBE_DENY is reachable without the proxy: the firewall is not in place"
    else
        say "blocked as expected: $FWCTL_PROBE_DENY (through the proxy and directly)"
    fi
    if answer="$(probe -fsS --max-time 10 "$FWCTL_PROBE_ALLOW" 2>&1)"; then
        say "reachable as expected: $FWCTL_PROBE_ALLOW (\"${answer:0:60}\")"
    else
        err "$FWCTL_PROBE_ALLOW is not reachable through the proxy: ${answer:-no answer}"
    fi
    # The Claude API through the base-URL endpoint: the placeholder goes in, the proxy adds
    # the real key. A GET of the model list costs nothing.
    base="$(env_value ANTHROPIC_BASE_URL)"
    if [ -n "$base" ] && [ -n "${ANTHROPIC_API_KEY:-}" ]; then
        result="$(probe -sS --max-time 15 -o /dev/null -w '%{http_code} %header{x-fwctl-reason}' \
            -H "x-api-key: $ANTHROPIC_API_KEY" -H 'anthropic-version: 2023-06-01' "$base/v1/models" 2>&1)" || true
        case "$result" in
            200*) say "Claude API reachable through $base with the real key" ;;
            401*) warn "api.anthropic.com refused the key (401): check the key file on the host, then rebuild or restart the container" ;;
            403*) err "the proxy refused the API request: ${result#403 }" ;;
            *)    warn "Claude API through $base: ${result:-no answer} (the firewall is up; the API or the key may be at fault)" ;;
        esac
    fi
fi

if [ "$failed" = 1 ]; then
    die "finished with errors (above); the firewall is up with $FWCTL_POLICY"
fi
say "ready: the firewall and the proxy are up; open a new terminal to get the environment"
