"""darkroom_cli."""
