"""Benchmark training through LiteMedSAM's image encoder with LoRA adapters, against inference.

Prints the environment, then one markdown table of seconds per image (median of ``--n`` repeats
after one warm-up) for: the inference encode (``SamBackbone.encode``), the forward of
``encode_for_training`` with adapters, and forward + backward + an AdamW step through the encoder
with adapters (loss on the features, so the decoder's share is left out), at batch 1 and 4.
Run from the repository root::

    python benchmarks/bench_lora.py --n 3 --threads 2

Images are synthetic 256 x 256 grey images (LiteMedSAM's input size: nothing is resized).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.backbones.lora import LoraConfig


def seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3, help="timed repeats per row (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    backbone = load_backbone("litemedsam")
    rng = np.random.default_rng(0)
    images = [rng.random((256, 256)).astype(np.float32) for _ in range(4)]

    backbone.set_trainable_scope("decoder+lora", LoraConfig())
    adapters = sum(p.numel() for n, p in backbone.named_trainable_parameters()
                   if n.startswith("image_encoder."))
    optimiser = torch.optim.AdamW(backbone.trainable_parameters(), lr=1e-4)

    def train_step(batch: list[np.ndarray]) -> None:
        features = torch.stack([e.features for e in backbone.encode_for_training(batch)])
        loss = features.square().mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    def forward_only(batch: list[np.ndarray]) -> None:
        with torch.no_grad():
            backbone.encode_for_training(batch)

    rows = []
    for size in (1, 4):
        batch = images[:size]
        backbone.set_trainable_scope("decoder")
        plain = seconds(lambda b=batch: backbone.encode(b, batch_size=len(b)), args.n) / size
        backbone.set_trainable_scope("decoder+lora", LoraConfig())
        adapted = seconds(lambda b=batch: backbone.encode(b, batch_size=len(b)), args.n) / size
        forward = seconds(lambda b=batch: forward_only(b), args.n) / size
        step = seconds(lambda b=batch: train_step(b), args.n) / size
        rows.append((size, plain, adapted, forward, step))

    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads; LiteMedSAM 256 px; LoRA rank 8 on q and v "
          f"({adapters} adapter parameters); median of {args.n}")
    print()
    print("| batch | encode (inference), s/image | encode with adapters (inference) | "
          "encode_for_training forward | forward + backward + AdamW step | step / encode |")
    print("|---|---|---|---|---|---|")
    for size, plain, adapted, forward, step in rows:
        print(f"| {size} | {plain:.3f} | {adapted:.3f} | {forward:.3f} | {step:.3f} | "
              f"{step / plain:.1f}x |")


if __name__ == "__main__":
    main()
