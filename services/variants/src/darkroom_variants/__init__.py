"""darkroom_variants."""
