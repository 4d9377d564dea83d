"""A segmentation network (U-Net) trained on a round's pseudo-labels and people's masks."""
