"""Classifiers that learn from image-level tags, and the class activation maps (CAMs) they give."""

from .adl_classifier import ARCHITECTURES, AdlClassifier, image_tensor
from .adl_training import AdlTraining, train_adl_classifier
from .attention_dropout import AttentionDropout
from .high_pass import high_pass, with_high_pass
from .rotation_cam import cam_to_shape, initial_mask, rotation_cam

__all__ = [
    "ARCHITECTURES", "AdlClassifier", "AdlTraining", "AttentionDropout", "cam_to_shape",
    "high_pass", "image_tensor", "initial_mask", "rotation_cam", "train_adl_classifier",
    "with_high_pass",
]
