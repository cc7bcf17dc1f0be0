#!/bin/sh
# fwctl-proxy-start: the sidecar proxy container's command (compose/docker-compose.yml).
# Root only for what needs root, then the proxy runs as fwproxy:
#   1. copy the compose secret to where only fwproxy can read it (the mounted file keeps
#      the host's owner and mode, which fwproxy usually cannot read);
#   2. create the CA if missing (key owned by fwproxy, public certificate on the shared
#      volume for the agent);
#   3. exec `fwctl proxy` as fwproxy, groups cleared (setpriv), in the foreground.
set -eu

POLICY="${FWCTL_POLICY:-/etc/fwctl/policy.toml}"
SECRET="${FWCTL_SECRET:-/run/secrets/anthropic_api_key}"
COPY_DIR="${FWCTL_SECRET_DIR:-/run/fwproxy}"
PROXY_USER="${FWCTL_PROXY_USER:-fwproxy}"
me="fwctl-proxy-start"

fwctl --version
fwctl check "$POLICY"
install -d -o "$PROXY_USER" -g "$PROXY_USER" -m 0700 "$COPY_DIR"
if ! install -o "$PROXY_USER" -g "$PROXY_USER" -m 0400 "$SECRET" "$COPY_DIR/anthropic_api_key"; then
    echo "$me: error: cannot copy the API key from $SECRET (compose secret anthropic_api_key: ~/.config/fwctl/anthropic_api_key on the host)" >&2
    exit 1
fi
echo "$me: API key copied to $COPY_DIR/anthropic_api_key (owner $PROXY_USER, mode 0400)"
fwctl ca init "$POLICY"
echo "$me: starting fwctl proxy as $PROXY_USER"
exec setpriv --reuid="$PROXY_USER" --regid="$PROXY_USER" --clear-groups fwctl proxy "$POLICY"
