"""Choosing the compute device: CUDA, then Apple MPS, then the CPU, unless told otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def pick_device(preference: str = "auto") -> torch.device:
    """The device to run on; an explicit choice that is not available is an error."""
    import torch

    if preference not in DEVICE_CHOICES:
        raise ValueError(f"device {preference!r}: choose one of {', '.join(DEVICE_CHOICES)}")
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if preference == "auto":
        return torch.device(next(name for name in ("cuda", "mps", "cpu") if available[name]))
    if not available[preference]:
        raise RuntimeError(f"device {preference!r} is not available on this machine")
    return torch.device(preference)


def describe_device(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
