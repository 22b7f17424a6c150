"""darkroom_common."""
