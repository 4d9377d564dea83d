"""Pixel affinities from a SAM affinity source map, and the random-walk transition matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def affinity_source_map(probabilities: np.ndarray) -> np.ndarray:
    """Aggregate N decoded SAM mask probability maps (N, H, W) in [0, 1] into one (H, W) map.

    Normalisation: the mean over the N prompts, then min-max scaled to [0, 1]; a constant
    mean map (no structure to follow) gives zeros. Returns float64.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 3 or probs.shape[0] == 0:
        raise ValueError(
            f"expected probabilities of shape (N, H, W) with N >= 1, got {probs.shape}"
        )
    if not np.all(np.isfinite(probs)):
        raise ValueError("probabilities contain NaN or infinite values")
    mean = probs.mean(axis=0)
    low, high = mean.min(), mean.max()
    if high <= low:
        return np.zeros_like(mean)
    return (mean - low) / (high - low)


def feature_source_map(features: np.ndarray) -> np.ndarray:
    """An affinity source from a (C, h, w) feature map (SAM's image embedding): each position's
    vector scaled to length √C, so the mean absolute channel gap between two positions is of
    order one whatever C is. Positions with a zero vector stay zero. Returns float64."""
    feat = _as_channels(features)
    norm = np.linalg.norm(feat, axis=0, keepdims=True)
    return feat * (np.sqrt(feat.shape[0]) / np.maximum(norm, 1e-12))


def affinity_degree(affinity: sp.spmatrix | sp.sparray, shape: tuple[int, int]) -> np.ndarray:
    """How strongly each pixel is tied to its neighbours: the affinity's row sums (self-loop
    excluded), divided by the largest, as an (h, w) map in [0, 1]. Low along boundaries."""
    a = sp.csr_matrix(affinity, dtype=np.float64)
    degree = np.asarray(a.sum(axis=1)).ravel() - a.diagonal()
    peak = degree.max() if degree.size else 0.0
    return (degree / peak if peak > 0 else degree).reshape(shape)


def neighbour_offsets(radius: int) -> np.ndarray:
    """All integer offsets (dy, dx) != (0, 0) with dy**2 + dx**2 < radius**2, as (K, 2)."""
    if radius < 1:
        raise ValueError(f"radius must be at least 1, got {radius}")
    span = np.arange(-radius + 1, radius)
    dy, dx = np.meshgrid(span, span, indexing="ij")
    keep = (dy**2 + dx**2 < radius**2) & ((dy != 0) | (dx != 0))
    return np.stack([dy[keep], dx[keep]], axis=1)


def _as_channels(feature: np.ndarray) -> np.ndarray:
    feat = np.asarray(feature, dtype=np.float64)
    if feat.ndim == 2:
        feat = feat[None]
    if feat.ndim != 3 or feat.shape[0] == 0 or min(feat.shape[1:]) == 0:
        raise ValueError(f"expected a feature map of shape (h, w) or (C, h, w), got {feat.shape}")
    return feat


def _offset_pairs(
    feat: np.ndarray, dy: int, dx: int, index: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel pairs (u, u + (dy, dx)) inside the image and their mean absolute feature gap."""
    _, h, w = feat.shape
    rows_u = slice(max(0, -dy), h - max(0, dy))
    cols_u = slice(max(0, -dx), w - max(0, dx))
    rows_v = slice(max(0, dy), h - max(0, -dy))
    cols_v = slice(max(0, dx), w - max(0, -dx))
    gap = np.abs(feat[:, rows_u, cols_u] - feat[:, rows_v, cols_v]).mean(axis=0)
    return index[rows_u, cols_u].ravel(), index[rows_v, cols_v].ravel(), gap.ravel()


def neighbour_affinity(feature: np.ndarray, radius: int = 5, beta: float = 4.0) -> sp.csr_matrix:
    """Symmetric sparse affinity between pixels closer than ``radius``, shape (h*w, h*w).

    ``feature`` is (h, w) or (C, h, w); pixels are numbered row-major. For every pair u != v
    whose offset satisfies dy**2 + dx**2 < radius**2 -- border pixels included, they simply
    have fewer neighbours -- ``A[u, v] = exp(-mean_c |f_u - f_v|) ** beta``; ``A[u, u] = 1``.
    Larger ``beta`` sharpens the contrast between similar and dissimilar pixels. Every pair
    within the radius is stored, even where the value underflows to 0.
    """
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got {beta}")
    feat = _as_channels(feature)
    _, h, w = feat.shape
    n = h * w
    index = np.arange(n).reshape(h, w)
    offsets = neighbour_offsets(radius)
    half = offsets[(offsets[:, 0] > 0) | ((offsets[:, 0] == 0) & (offsets[:, 1] > 0))]
    pairs = [_offset_pairs(feat, int(dy), int(dx), index) for dy, dx in half]
    us, vs, gaps = (np.concatenate(parts) for parts in zip(*pairs, strict=True))
    values = np.exp(-beta * gaps)
    diag = np.arange(n)
    rows = np.concatenate([us, vs, diag])
    cols = np.concatenate([vs, us, diag])
    data = np.concatenate([values, values, np.ones(n)])
    return sp.coo_matrix((data, (rows, cols)), shape=(n, n)).tocsr()


def transition_matrix(affinity: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """Row-stochastic transition ``T = D^-1 A`` with ``D = diag(row sums of A)``.

    Each row sums to 1, so ``T @ c`` replaces every pixel by the affinity-weighted average
    of its neighbourhood. ``A`` must be square and non-negative; a row with no affinity at
    all gets a self-loop so it still sums to 1.
    """
    a = sp.csr_matrix(affinity, dtype=np.float64)
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"affinity must be square, got shape {a.shape}")
    if a.nnz and a.data.min() < 0:
        raise ValueError("affinity must be non-negative")
    degree = np.asarray(a.sum(axis=1)).ravel()
    isolated = degree <= 0
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=~isolated)
    transition = sp.diags(inverse) @ a
    if isolated.any():
        transition = transition + sp.diags(isolated.astype(np.float64))
    return sp.csr_matrix(transition)
