"""The security suite (issue 7): auth, prefix confinement, presigned URLs, secrets, GPS."""
