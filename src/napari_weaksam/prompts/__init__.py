"""SAM prompts from masks and maps: points (PEPM, uniform), boxes, dense mask prompts, and the
named strategies that combine them for generating and for training."""

from .points import activation_points, uniform_points

__all__ = ["activation_points", "uniform_points"]
