"""darkroom_catalog."""
