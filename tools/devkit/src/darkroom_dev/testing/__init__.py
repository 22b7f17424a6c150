"""pytest plugins with the session-scoped fixtures for the real broker and object server."""
