"""darkroom_raw_provider."""
