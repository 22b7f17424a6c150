"""``python -m darkroom_ingest``: run the ingest stage's worker."""

import sys

from darkroom_common.service import run_service
from darkroom_ingest.app import build_app
from darkroom_ingest.settings import IngestSettings

if __name__ == "__main__":
    sys.exit(run_service("ingest", IngestSettings, build_app))
