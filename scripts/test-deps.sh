#!/usr/bin/env bash
# What the tests need beyond Python packages: PostgreSQL and Redis running, and Debian packages:
# espeak-ng and sox (speech fixtures), age (backups must open with the standard tool), chromium
# and a font (the browser tests drive Debian's Chromium; Playwright never downloads a browser).
# Node.js and npm come from node-deps.sh, which the web build runs first. Installs/starts them
# when missing and we are root; quiet when all is there.
set -euo pipefail

# Debian package -> a file that shows it is installed.
declare -A wanted=(
    [espeak-ng]=/usr/bin/espeak-ng
    [sox]=/usr/bin/sox
    [age]=/usr/bin/age
    [chromium]=/usr/bin/chromium
    [fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
)
missing=()
for pkg in espeak-ng sox age chromium fonts-dejavu-core; do
    [ -e "${wanted[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
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
