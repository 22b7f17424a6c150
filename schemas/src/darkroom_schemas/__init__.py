"""darkroom_schemas."""
