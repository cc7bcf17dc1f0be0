#!/bin/sh
# fwctl-agent-start: the sidecar agent container's command (compose/docker-compose.yml),
# run as root; then the given command (default: sleep) runs as node.
#   1. remove the sudo rules of the single-container variant: here node needs none;
#   2. copy the proxy's public CA certificate (shared volume) to agent-policy.toml's ca_cert;
#   3. run the devcontainer hook, post-start.sh, with FWCTL_COMMAND=apply: the firewall
#      (this container reaches the proxy and nothing else), the environment file, the
#      checks and probes as node; the endpoint address goes into NO_PROXY;
#   4. exec the command as node.
set -eu

PROXY_ADDR="${FWCTL_PROXY_ADDR:-172.28.0.10}"
CA_SHARED="${FWCTL_CA_SHARED:-/var/lib/fwctl/public/ca.pem}"
SANDBOX_USER="${FWCTL_SANDBOX_USER:-node}"
SANDBOX_HOME="$(getent passwd "$SANDBOX_USER" | cut -d: -f6)"

rm -f /etc/sudoers.d/fwctl
install -m 0644 "$CA_SHARED" /etc/fwctl/ca.pem

FWCTL_COMMAND=apply FWCTL_SECRET="" SUDO="" \
FWCTL_SANDBOX_USER="$SANDBOX_USER" FWCTL_ENV_FILE="$SANDBOX_HOME/.config/fwctl/env.sh" \
FWCTL_NO_PROXY_ADD="$PROXY_ADDR" FWCTL_CLAUDE_SETTINGS=/etc/claude-code/managed-settings.json \
    /usr/local/bin/fwctl-post-start

[ "$#" -gt 0 ] || set -- sleep infinity
exec setpriv --reuid="$SANDBOX_USER" --regid="$SANDBOX_USER" --init-groups "$@"
