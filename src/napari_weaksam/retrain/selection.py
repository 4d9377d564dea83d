"""Which of a stage's SAM masks train the next round: each mask gets a score, and
:func:`.ids_filter.select_targets` keeps those at or above the rule's bar.

- ``"ids"`` (EP-SAM): the share of the mask inside the item's initial CAM mask. A mask larger
  than the initial one never passes, so the rounds can shrink masks but never grow them.
- ``"agreement"``: the Dice between the mask and SAM's answer when asked again with one box per
  component of that mask. It compares SAM with itself, not with the initial mask: a mask that
  follows an object's edges comes back when boxed (a fragment of a larger object, or a blob
  over several, comes back as something else), whether it is larger or smaller than the initial
  mask. No ground truth either way.
"""

from __future__ import annotations

import numpy as np

from ..backbones.sam import Embedding, SamBackbone
from ..method_settings import SELECTION_RULES
from ..metrics import dice
from ..prompts.decode import decode_region
from .ids_filter import ids_score


def agreement_score(backbone: SamBackbone, embedding: Embedding, mask: np.ndarray) -> float:
    """Dice between ``mask`` (item frame) and SAM's answer to its boxes; 0 for a mask too small
    to give a box (an empty one included)."""
    again = decode_region(backbone, embedding, mask.astype(np.float32), mask.astype(bool),
                          "boxes")
    return 0.0 if again is None else dice(mask, again)


def selection_score(rule: str, backbone: SamBackbone, embedding: Embedding,
                    initial: np.ndarray, mask: np.ndarray) -> float:
    """The ``rule``'s score of one SAM ``mask`` for an item whose initial mask is ``initial``."""
    if rule == "ids":
        return ids_score(initial, mask)
    if rule == "agreement":
        return agreement_score(backbone, embedding, mask)
    raise ValueError(f"selection {rule!r}: expected one of {', '.join(SELECTION_RULES)}")
