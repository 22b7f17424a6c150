#!/bin/sh
# Install Debian's Chromium and its WebDriver for the catalog's gallery-page browser test.
# Idempotent: does nothing when /usr/bin/chromium and /usr/bin/chromedriver exist.
# Needs root (or sudo) and the Debian apt repositories.
set -eu
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium chromium-driver
