"""Decoder retraining: the IDS filter, decoder fine-tuning and the round engine."""

from ..prompts.points import activation_points, uniform_points
from .decoder_training import DecoderTraining, TrainingSample, train_decoder
from .engine import (
    Candidate,
    EngineInputs,
    RetrainingEngine,
    RetrainSettings,
    StageResult,
    human_samples,
)
from .ids_filter import ids_score, keeps

__all__ = [
    "Candidate", "DecoderTraining", "EngineInputs", "RetrainSettings", "RetrainingEngine",
    "StageResult", "TrainingSample", "activation_points", "human_samples", "ids_score", "keeps",
    "train_decoder", "uniform_points",
]
