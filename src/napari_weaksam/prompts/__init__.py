"""SAM prompts from masks and maps: points (PEPM, uniform), boxes, dense mask prompts, and the
named strategies that combine them for generating and for training."""

from ..method_settings import PROMPT_STRATEGIES
from .boxes import jitter_boxes, mask_boxes
from .decode import answer_region, decode_prompts, prompt_logits
from .dense import dense_prompt, low_res_frame
from .points import activation_points, uniform_points
from .strategy import PromptSet, generation_prompts, training_prompts

__all__ = [
    "PROMPT_STRATEGIES", "PromptSet", "activation_points", "answer_region", "decode_prompts",
    "dense_prompt", "generation_prompts", "jitter_boxes", "low_res_frame", "mask_boxes",
    "prompt_logits", "training_prompts", "uniform_points",
]
