"""Which classes a method segments in an item: a person's tag decides, the classifier only guesses.

Every method asks this one place. For a tagged item the tag is the answer (no finding: every class
absent, so no pixels of any class); for an untagged item a class is present when the classifier's
probability reaches the gate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..project import ImageClass, Item

# what a run records in its params: tags constrained the proposals of tagged items
PRESENCE_RULE = "tag where tagged, else classifier probability >= gate"


def tagged_presence(item: Item, tags: dict[int, set[int]],
                    classes: Sequence[ImageClass]) -> np.ndarray | None:
    """The person's answer per class for ``item`` (True: tagged present), None when untagged.

    ``tags`` is ``catalog.all_tags()``: tagged items only, an empty set meaning no finding."""
    if item.id not in tags:
        return None
    return np.array([c.id in tags[item.id] for c in classes], dtype=bool)


def presence(tagged: np.ndarray | None, probabilities: np.ndarray, gate: float) -> np.ndarray:
    """(P,) bool: the tag (``tagged_presence``) when there is one, whatever the probabilities;
    else ``probabilities >= gate``."""
    if tagged is not None:
        return np.asarray(tagged, dtype=bool).copy()
    return np.asarray(probabilities) >= gate
