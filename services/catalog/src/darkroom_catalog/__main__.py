"""``python -m darkroom_catalog``: run the catalog stage's worker."""

import sys

from darkroom_catalog.app import build_app
from darkroom_catalog.settings import CatalogSettings
from darkroom_runtime import run_service

if __name__ == "__main__":
    sys.exit(run_service("catalog", CatalogSettings, build_app))
