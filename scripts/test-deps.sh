#!/usr/bin/env bash
# What the tests need beyond Python packages: PostgreSQL and Redis running, and Debian packages
# (espeak-ng and sox for speech fixtures). Installs/starts them when missing and we are root.
set -euo pipefail

missing=()
for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
    fi
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    fi
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v redis-server >/dev/null; then
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    fi
fi
