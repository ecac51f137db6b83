#!/usr/bin/env bash
# Node.js and npm build the web app. Installed from Debian's packages when missing and we are root.
set -euo pipefail
if command -v node >/dev/null && command -v npm >/dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
    # Some builds of the nodejs package bring npm along; Debian's own packages it separately.
    command -v npm >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
else
    echo "error: node and npm are needed to build the web app (apt-get install nodejs npm)" >&2
    exit 1
fi
