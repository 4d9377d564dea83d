"""The high-frequency channel that Enhanced-ADL adds to the RGB input.

The original EP-SAM removes only a 2×2 block at the centre of the shifted spectrum, which is close
to the deviation of each pixel from the image mean. Here the removed disk has a ``radius`` in
frequency bins (≤ 0 removes nothing, 1 removes just the DC term); elsewhere the default is 4, so
slow illumination changes go as well as the mean.
"""

from __future__ import annotations

import torch


def _low_frequencies(height: int, width: int, radius: float,
                     device: torch.device) -> torch.Tensor:
    """(H, W) bool: True where the shifted spectrum lies closer than ``radius`` to its centre."""
    rows = torch.arange(height, device=device, dtype=torch.float32) - height // 2
    cols = torch.arange(width, device=device, dtype=torch.float32) - width // 2
    distance = torch.sqrt(rows[:, None] ** 2 + cols[None, :] ** 2)
    return distance < radius


def high_pass(images: torch.Tensor, radius: float) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] → (B, 1, H, W): |inverse FFT of the spectrum without its centre|,
    averaged over the colour channels."""
    spectrum = torch.fft.fftshift(torch.fft.fft2(images.float(), norm="forward"), dim=(-2, -1))
    low = _low_frequencies(images.shape[-2], images.shape[-1], radius, images.device)
    spectrum = spectrum.masked_fill(low, 0)
    spatial = torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1)), norm="forward")
    return spatial.real.abs().mean(dim=1, keepdim=True).to(images.dtype)


def with_high_pass(images: torch.Tensor, radius: float) -> torch.Tensor:
    """(B, 3, H, W) → (B, 4, H, W): RGB followed by its high-pass channel."""
    return torch.cat([images, high_pass(images, radius)], dim=1)
