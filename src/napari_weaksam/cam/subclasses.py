"""Sub-class exploration: k-means clusters within each class's positive items.

Each positive item of class ``p`` gets a cluster ``k`` (from pooled embedding features); the
sub-class target is a multi-hot vector of length ``P·K + 1``: index 0 means "no class", index
``1 + p·K + k`` means "class p, cluster k". Clustering uses image-level tags only.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans


def subclass_targets(pooled: np.ndarray, labels: np.ndarray, clusters: int,
                     seed: int = 0) -> np.ndarray:
    """(N, D) pooled features and (N, P) 0/1 tags → (N, P·K + 1) sub-class targets."""
    n, classes = labels.shape
    targets = np.zeros((n, classes * clusters + 1), dtype=np.float32)
    targets[labels.sum(axis=1) == 0, 0] = 1.0
    for p in range(classes):
        positive = np.flatnonzero(labels[:, p] > 0)
        if positive.size == 0:
            continue
        k = min(clusters, positive.size)
        assignment = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(
            pooled[positive])
        targets[positive, 1 + p * clusters + assignment] = 1.0
    return targets
