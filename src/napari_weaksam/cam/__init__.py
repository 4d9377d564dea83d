"""Classifiers that learn from image-level tags, and the class activation maps (CAMs) they give."""
