#!/bin/sh
# Installs the Debian packages named as arguments when they are missing.
# As root it runs apt-get itself; otherwise it uses sudo when there is one.
set -eu
need=""
for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ]; then as_root=""
elif command -v sudo >/dev/null 2>&1; then as_root="sudo"
else echo "missing Debian packages:$need (install them as root: apt-get install$need)" >&2; exit 1
fi
echo "installing:$need" >&2
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -qq
# shellcheck disable=SC2086
$as_root apt-get install -y -qq --no-install-recommends $need >/dev/null
