"""darkroom_imaging."""
