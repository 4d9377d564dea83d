"""Refinement: propagate a class activation map over SAM-derived pixel affinities."""

from napari_weaksam.refine.affinity import (
    affinity_degree,
    affinity_source_map,
    feature_source_map,
    neighbour_affinity,
    neighbour_offsets,
    transition_matrix,
)
from napari_weaksam.refine.grid_prompts import grid_boxes, grid_points
from napari_weaksam.refine.random_walk import (
    random_walk,
    refine_cam,
    resize_map,
    threshold_map,
    walk_cam,
)

__all__ = [
    "affinity_degree",
    "affinity_source_map",
    "feature_source_map",
    "grid_boxes",
    "grid_points",
    "neighbour_affinity",
    "neighbour_offsets",
    "random_walk",
    "refine_cam",
    "resize_map",
    "threshold_map",
    "transition_matrix",
    "walk_cam",
]
