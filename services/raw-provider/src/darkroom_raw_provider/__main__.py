"""``python -m darkroom_raw_provider``: run the raw-provider stage's worker."""

import sys

from darkroom_raw_provider.app import build_app
from darkroom_raw_provider.settings import RawProviderSettings
from darkroom_runtime import run_service

if __name__ == "__main__":
    sys.exit(run_service("raw-provider", RawProviderSettings, build_app))
