#!/usr/bin/env bash
# Installs the Debian packages tlkit builds against (skipped when all are present already).
set -euo pipefail
PACKAGES=(libopenblas-dev liblapacke-dev libzstd-dev zlib1g-dev libsqlite3-dev libpng-dev libjpeg-dev libdnnl-dev zstd time)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
