"""laws stage."""
