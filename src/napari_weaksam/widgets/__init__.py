"""napari dock widgets: thin Qt layers over the project and pipeline code."""
