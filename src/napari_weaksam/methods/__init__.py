"""Weak-supervision methods: presets of the pipeline's stages."""
