#!/usr/bin/env bash
# Prepare this checkout: a virtual environment with napari-weaksam and its test tools, and the
# system libraries napari needs on a virtual screen (Debian/Ubuntu). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
DEBS="xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-cursor0 libxcb-image0
libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxkbcommon-x11-0 libegl1 libgl1 libdbus-1-3
libfontconfig1"

missing_debs() {
    command -v dpkg-query >/dev/null || return 0
    for pkg in $DEBS; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || echo "$pkg"
    done
}

need=$(missing_debs | tr '\n' ' ')
if [ -n "${need// /}" ]; then
    echo "setup: installing system packages: $need"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq
    # shellcheck disable=SC2086
    $sudo_cmd apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[test]"
    rm -f "$VENV"/.installed-* && touch "$stamp"
fi
