"""``python -m darkroom_ingest``: run the ingest stage's worker."""

import sys

from darkroom_ingest.app import build_app
from darkroom_ingest.settings import IngestSettings
from darkroom_runtime import run_service

if __name__ == "__main__":
    sys.exit(run_service("ingest", IngestSettings, build_app))
