#!/usr/bin/env bash
# Debian's headless Chromium and its chromedriver, for the browser tests of `glassbox ui`
# (tests/unit/ui/test_ui_browser.py, marker `browser`). A no-op when both are installed; otherwise
# apt-get installs them (as root, or through sudo). Selenium itself comes with the dev extra.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "browser.sh: chromium and chromium-driver are missing and this user cannot apt-get install them" >&2
    exit 1
  fi
fi
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
echo "browser.sh: chromium $(chromium --version 2>/dev/null | awk '{print $2}') installed in $(( $(date +%s) - start ))s"
