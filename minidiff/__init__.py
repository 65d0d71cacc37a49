"""minidiff."""
