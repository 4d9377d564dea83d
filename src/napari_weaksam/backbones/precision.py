"""Which precision the image encoder runs in when the person asks for ``auto``, and the one the
networks trained beside it follow.

bf16 autocast halves the encoder's time on a CPU with bf16 matrix instructions (AMX or
AVX512-BF16) and on a GPU that computes bf16, with 99.97 % of mask pixels identical to fp32 (the
backbone benchmark); elsewhere it is emulated and slower, so fp32 is kept. A project whose cache
already holds this model's embeddings in one precision keeps that one: switching would encode
every image again and move every number a little.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from ..project import Project
    from .sam import SamBackbone

AUTO = "auto"
CHOICES = (AUTO, "fp32", "bf16", "fp16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products in hardware."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    return False


def cached_precision(backbone: SamBackbone, project: Project) -> str | None:
    """The precision of most of the project's cached embeddings for ``backbone`` (None: none
    cached). Leaves the backbone's precision as it found it."""
    from .sam import PRECISIONS, PRECISIONS_BY_DTYPE

    before = PRECISIONS_BY_DTYPE[backbone.autocast_dtype]
    counts = {}
    try:
        for precision in PRECISIONS:
            backbone.set_precision(precision)
            folder = project.embedding_cache(backbone).folder
            counts[precision] = sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0
    finally:
        backbone.set_precision(before)
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def choose_precision(preference: str, backbone: SamBackbone,
                     project: Project | None = None) -> tuple[str, str]:
    """The precision for ``preference`` and why: an explicit one as given; ``auto``: the
    project's cached one, else bf16 where the device computes it natively, else fp32."""
    if preference not in CHOICES:
        raise ValueError(f"precision {preference!r}: choose one of {', '.join(CHOICES)}")
    if preference != AUTO:
        return preference, "as asked"
    cached = None if project is None else cached_precision(backbone, project)
    if cached is not None:
        return cached, "the project's embeddings are cached in it"
    if native_bf16(backbone.device):
        return "bf16", f"the {backbone.device.type.upper()} computes bf16 natively"
    return "fp32", f"the {backbone.device.type.upper()} has no native bf16"


def set_auto_precision(preference: str, backbone: SamBackbone,
                       project: Project | None = None) -> str:
    """Set the backbone's precision as :func:`choose_precision` says; returns "bf16 (why)"."""
    precision, why = choose_precision(preference, backbone, project)
    backbone.set_precision(precision)
    return f"{precision} ({why})"


def training_autocast(backbone: SamBackbone) -> torch.dtype | None:
    """The precision the networks trained beside SAM run their forward passes in: bf16 when
    SAM's encoder runs in it (about twice as fast per step on a CPU with bf16 units), else
    float32 (None; fp16 would need gradient scaling)."""
    import torch

    dtype = backbone.autocast_dtype
    return dtype if dtype == torch.bfloat16 else None
