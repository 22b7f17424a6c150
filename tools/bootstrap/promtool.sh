#!/usr/bin/env bash
# Install promtool (Debian's `prometheus` package) for the observability tests, which run
# `promtool check config` and `promtool check rules` on deploy/prometheus/.
# Idempotent: does nothing when promtool is on PATH. Needs root (or sudo) and apt.
# The package ships a Prometheus server unit; we only want the CLI, so the server is kept
# from starting during the install (policy-rc.d) and stopped/disabled if it started anyway.
set -euo pipefail

if command -v promtool >/dev/null; then
  echo "promtool already installed: $(promtool --version 2>&1 | head -1)"
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null || { echo "promtool.sh: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=""
if [[ ! -e "$POLICY" ]]; then
  # 101 = "action forbidden": invoke-rc.d will not start the server during the install.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod +x "$POLICY"
  CREATED_POLICY=1
fi
cleanup() { [[ -n "$CREATED_POLICY" ]] && $SUDO rm -f "$POLICY"; return 0; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null

if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
elif [[ -x /etc/init.d/prometheus ]]; then
  $SUDO /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi

echo "promtool installed: $(promtool --version 2>&1 | head -1)"
