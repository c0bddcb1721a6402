#!/usr/bin/env bash
# Makes sure the browser tests (web/browser_test.go) have what they drive:
# Debian's chromium, and axe-core from the npm registry, installed into
# ~/.cache/sessiond-axe (outside the repository; override with
# SESSIOND_AXE_DIR). Installs what is missing; safe to run again. Called by
# scripts/test.sh. Set SESSIOND_CHROMIUM or SESSIOND_AXE_JS to use a browser
# or an axe.min.js of your own instead.
set -euo pipefail

# The axe-core release the accessibility scans use.
AXE_VERSION=4.14.1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

apt_updated=
apt_install() {
  command -v apt-get >/dev/null || { echo "browser: cannot install $* (no apt-get)"; return 1; }
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

have_chromium() {
  [ -n "${SESSIOND_CHROMIUM:-}" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
    command -v google-chrome >/dev/null
}
if ! have_chromium; then
  echo "browser: installing chromium"
  # fonts-dejavu-core: readable text in the screenshots.
  apt_install chromium fonts-dejavu-core
fi

axe_dir="${SESSIOND_AXE_DIR:-$HOME/.cache/sessiond-axe}"
if [ -z "${SESSIOND_AXE_JS:-}" ] && ! grep -qs "\"version\": \"$AXE_VERSION\"" "$axe_dir/node_modules/axe-core/package.json"; then
  if ! command -v npm >/dev/null; then
    echo "browser: installing npm"
    apt_install npm
  fi
  echo "browser: installing axe-core $AXE_VERSION into $axe_dir"
  mkdir -p "$axe_dir"
  npm install --prefix "$axe_dir" --no-audit --no-fund --silent --no-save "axe-core@$AXE_VERSION" >/dev/null
fi
echo "browser: chromium and axe-core are ready"
