"""The command line's model flags (``--model``, ``--device``, ``--precision``…) and the
backbone they choose, for the commands that encode or segment."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .backbones.device import DEVICE_CHOICES
from .backbones.precision import CHOICES as PRECISION_CHOICES

if TYPE_CHECKING:
    from .project import Project


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The flags that choose the model, its device and its precision."""
    parser.add_argument("--model", default="litemedsam",
                        help="litemedsam (default), sam_vit_b, sam_vit_l or sam_vit_h")
    parser.add_argument("--checkpoint", type=Path, help="weights file of an official SAM model")
    parser.add_argument("--weights-dir", help="folder with official SAM checkpoints")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                        help="auto (cuda, then mps, then cpu; default), cuda, mps or cpu")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help="autocast precision of the image encoder; auto (default): the one "
                        "the project's embeddings are cached in, else bf16 where the CPU or GPU "
                        "computes it natively (about twice as fast, 99.97 %% of mask pixels as "
                        "fp32; see the README), else fp32")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the image encoder: slow first item, faster after")


def backbone_from(args: argparse.Namespace, project: Project | None = None):
    """The model the flags ask for; ``--precision auto`` is decided here (for ``project``'s
    cache) and said."""
    from .backbones.device import pick_device
    from .backbones.loaders import load_backbone
    from .backbones.precision import AUTO, set_auto_precision

    backbone = load_backbone(args.model, device=pick_device(args.device),
                             checkpoint=args.checkpoint, weights_folder=args.weights_dir)
    said = set_auto_precision(args.precision, backbone, project)
    if args.precision == AUTO:
        print(f"encoder precision: {said}")
    if args.compile:
        backbone.compile_encoder()
    return backbone


def precision_for_workers(args: argparse.Namespace, project: Project) -> str:
    """``--precision``, with ``auto`` decided once here (every worker encodes alike)."""
    from .backbones.precision import AUTO

    if args.precision != AUTO or args.device not in ("auto", "cpu"):
        return args.precision          # ModelSpec refuses another device with its message
    from .backbones.sam import PRECISIONS_BY_DTYPE

    local = argparse.Namespace(**{**vars(args), "device": "cpu", "compile": False})
    return PRECISIONS_BY_DTYPE[backbone_from(local, project).autocast_dtype]
