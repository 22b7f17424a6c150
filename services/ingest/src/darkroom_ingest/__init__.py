"""darkroom_ingest."""
