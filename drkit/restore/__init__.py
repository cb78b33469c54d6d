"""Restores: stream a backup's objects back, checking each one's SHA-256 against its manifest."""
