"""``python -m darkroom_variants``: run the variants stage's worker."""

import sys

from darkroom_runtime import run_service
from darkroom_variants.app import build_app
from darkroom_variants.settings import VariantsSettings

if __name__ == "__main__":
    sys.exit(run_service("variants", VariantsSettings, build_app))
