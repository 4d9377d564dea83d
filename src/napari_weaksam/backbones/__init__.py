"""Segment Anything backbones: where their weights are, which device runs them."""
