"""The bad-input gauntlet: generated hostile files through the probe and the ingest validator."""
