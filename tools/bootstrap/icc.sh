#!/usr/bin/env bash
# Install the press profile the engine assumes for CMYK images without an ICC profile:
# Ghostscript's "Artifex CMYK SWOP Profile" (/usr/share/color/icc/ghostscript/default_cmyk.icc,
# Debian package libgs-common; see libs/imaging/src/darkroom_imaging/cmyk.py).
# Idempotent: does nothing when the profile is there. Needs root (or sudo) and apt; without
# them it says so and exits 0, and the engine falls back to libvips' built-in CMYK profile.
set -euo pipefail

PROFILE=/usr/share/color/icc/ghostscript/default_cmyk.icc
if [[ -r "$PROFILE" ]]; then
  echo "CMYK profile present: $PROFILE"
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "icc.sh: not root and no sudo: untagged CMYK will use libvips' built-in profile" >&2
    exit 0
  fi
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends libgs-common >/dev/null
echo "CMYK profile installed: $PROFILE"
