"""Whole slides: tissue detection, tiling into items, stitching tile labels, polygons, cohorts."""
