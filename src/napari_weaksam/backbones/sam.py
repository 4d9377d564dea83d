"""One interface over SAM-family models: encode an image once, decode many prompts against it.

Every model here is the official ``segment_anything`` prompt encoder and mask decoder behind an
image encoder; they differ in input size and intensity normalisation, which :class:`Preprocessing`
describes. Prompts and masks are in the item's own pixel coordinates; the model's frame (resize of
the longest side, padding) is handled here.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..method_settings import TRAINABLE_SCOPES
from .lora import (
    LoraConfig,
    adapter_parameters,
    adapter_shapes,
    add_lora,
    lora_config,
    lora_layers,
    remove_lora,
    reset_lora,
)
from .resize import pixel_channels, resize_in_blocks

#: Images with more pixels are resized in strips (float32 RGB of the whole would take 12 bytes
#: per pixel, several times over); up to this size the whole image is converted, as always.
DIRECT_MAX_PIXELS = 4096 * 4096

PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16,
}
PRECISIONS_BY_DTYPE = {dtype: name for name, dtype in PRECISIONS.items()}
DECODER_PREFIXES = ("prompt_encoder.", "mask_decoder.")
#: What :meth:`SamBackbone.set_trainable_scope` accepts: the prompt encoder and mask decoder, or
#: those plus LoRA adapters on the image encoder's attention (the rest of the encoder frozen).
SCOPES = TRAINABLE_SCOPES
#: The key of a trained state that holds the adapters' settings (absent without adapters).
LORA_CONFIG_KEY = "lora_config"


@dataclass(frozen=True)
class Preprocessing:
    """How an image enters the encoder: longest side to ``size``, normalised, padded."""

    size: int
    normalisation: str  # "minmax": per image to [0, 1]; "meanstd": 0-255 RGB, ImageNet mean/std
    version: int = 1    # bump when anything here changes: cached embeddings become invalid
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)

    def resized_shape(self, height: int, width: int) -> tuple[int, int]:
        scale = self.size / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    def signature(self) -> str:
        return f"{self.normalisation}-{self.size}-v{self.version}"


@dataclass
class Embedding:
    """An encoded image: the feature map plus the sizes needed to map masks back."""

    features: torch.Tensor            # (C, h, w); float32 fresh, float16 from the cache
    original_shape: tuple[int, int]   # (H, W) of the item
    resized_shape: tuple[int, int]    # (h', w') inside the padded model frame


@dataclass
class Decoded:
    """Decoder output for N prompts on one image."""

    logits: torch.Tensor   # (N, M, H, W) mask logits at the item's full size
    iou: torch.Tensor      # (N, M) predicted IoU
    low_res: torch.Tensor  # (N, M, 256, 256) logits in the model frame (for mask prompts)

    def masks(self) -> np.ndarray:
        return (self.logits > 0).cpu().numpy()


def to_rgb_float(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) of any numeric dtype → (H, W, 3) float32."""
    channels = pixel_channels(tuple(np.shape(image)))
    array = np.asarray(image, dtype=np.float32)
    if channels == 4:
        return array[..., :3]
    if channels == 3:
        return array
    return np.repeat(array.reshape(*array.shape[:2], 1), 3, axis=-1)


def resized_rgb(image: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """The image as (3, h, w) float32 RGB, resized with antialiased bilinear filtering.

    Images of up to :data:`DIRECT_MAX_PIXELS` are converted to float32 RGB whole; bigger ones
    a strip of rows at a time in their stored dtype (:func:`resize_in_blocks`, the same result
    to float rounding), so memory stays near the output size whatever the image's size.
    """
    if int(np.prod(image.shape[:2])) > DIRECT_MAX_PIXELS:
        return resize_in_blocks(image, shape)
    rgb = to_rgb_float(image)
    if not np.isfinite(rgb).all():
        raise ValueError("the image contains NaN or Inf values")
    tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    return F.interpolate(tensor, shape, mode="bilinear", align_corners=False, antialias=True)[0]


class SamBackbone(nn.Module):
    """Image encoder + official prompt encoder and mask decoder, with their preprocessing.

    The modules come with their pretrained weights: :meth:`reset_trained` goes back to the
    prompt encoder's and decoder's values as given here.
    """

    def __init__(self, model_id: str, image_encoder: nn.Module, prompt_encoder: nn.Module,
                 mask_decoder: nn.Module, preprocessing: Preprocessing,
                 weights_sha256: str) -> None:
        super().__init__()
        self.model_id = model_id
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.preprocessing = preprocessing
        self.weights_sha256 = weights_sha256
        self.autocast_dtype: torch.dtype | None = None
        self._compiled_encoder: nn.Module | None = None
        self._pretrained = {k: v.detach().cpu().clone() for k, v in self.decoder_state().items()}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def encode_batch_size(self) -> int:
        """Images per encoder batch by default: 1 on a CPU (LiteMedSAM, bf16, 2 cores: 0.65 s
        per image one at a time, 0.86 s in batches of 4, the same embeddings), 8 on a GPU."""
        return 1 if self.device.type == "cpu" else 8

    def cache_signature(self) -> str:
        """What an embedding depends on besides the pixels: model, weights, preprocessing and
        precision (bf16 embeddings differ slightly from fp32 ones)."""
        precision = PRECISIONS_BY_DTYPE[self.autocast_dtype]
        return (f"{self.model_id}-{self.weights_sha256[:16]}-{self.preprocessing.signature()}"
                f"-{precision}{self._adapter_signature()}")

    def _adapter_signature(self) -> str:
        """Nothing without adapters, nor while they add nothing (every B = 0: the encoder is
        then exactly the pretrained one); else "-lora" and a hash of their settings and
        tensors."""
        layers = lora_layers(self.image_encoder)
        if all(layer.is_identity() for layer in layers.values()):
            return ""
        digest = hashlib.sha256(repr(sorted(self.lora.as_dict().items())).encode())
        for name, tensor in sorted(adapter_parameters(self.image_encoder).items()):
            digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return f"-lora{digest.hexdigest()[:12]}"

    def set_precision(self, precision: str) -> None:
        """``fp32`` (exact), ``bf16`` or ``fp16`` autocast for the image encoder."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.autocast_dtype = PRECISIONS[precision]

    def compile_encoder(self) -> None:
        """Compile the image encoder with ``torch.compile`` (the first encode then takes
        tens of seconds on a CPU, later ones are about twice as fast; see the benchmark)."""
        # kept outside the module tree: its parameters are the encoder's own
        object.__setattr__(self, "_compiled_encoder",
                           torch.compile(self.image_encoder, dynamic=False))

    # -- prompt side (what fine-tuning changes) ------------------------------------------------
    def decoder_state(self) -> dict[str, torch.Tensor]:
        """A copy of the prompt encoder's and mask decoder's weights (the part fine-tuning
        trains), keyed as in the full model."""
        return {
            key: value.detach().clone()
            for key, value in self.state_dict().items()
            if key.startswith(DECODER_PREFIXES)
        }

    def load_decoder_state(self, state: dict[str, torch.Tensor]) -> None:
        """Put back prompt-encoder and decoder weights from :meth:`decoder_state` or a
        fine-tuned checkpoint; every key must match."""
        expected = {k for k in self.state_dict() if k.startswith(DECODER_PREFIXES)}
        given = set(state)
        if given != expected:
            missing = sorted(expected - given)[:5]
            unexpected = sorted(given - expected)[:5]
            raise ValueError(f"decoder weights do not fit {self.model_id}: missing {missing}, "
                             f"unexpected {unexpected}")
        self.load_state_dict(state, strict=False)

    # -- what training changes -------------------------------------------------------------
    @property
    def trainable_scope(self) -> str:
        """What training changes: ``decoder`` (prompt encoder + mask decoder) or
        ``decoder+lora`` (those and the image encoder's LoRA adapters)."""
        return "decoder" if self.lora is None else "decoder+lora"

    @property
    def lora(self) -> LoraConfig | None:
        """The image encoder's adapter settings, or None without adapters."""
        return lora_config(self.image_encoder)

    def set_trainable_scope(self, scope: str, lora: LoraConfig | None = None) -> None:
        """Train the prompt encoder and mask decoder ("decoder"), or those and LoRA adapters on
        the image encoder's attention ("decoder+lora", with ``lora`` or the recipe's default
        settings). Adapters are added at their initial values (B = 0: the encoder stays the
        pretrained one until trained), and removed for "decoder"; the same scope and settings
        again change nothing."""
        if scope not in SCOPES:
            raise ValueError(f"trainable scope {scope!r}: choose one of {', '.join(SCOPES)}")
        if scope == "decoder" and lora is not None:
            raise ValueError("LoRA settings given for the 'decoder' scope, which has no adapters")
        wanted = (lora or LoraConfig()) if scope == "decoder+lora" else None
        if wanted == self.lora:
            return
        if self.lora is not None:
            remove_lora(self.image_encoder)
        if wanted is not None:
            add_lora(self.image_encoder, wanted)
        if self._compiled_encoder is not None:  # the graph was traced for other modules
            self.compile_encoder()

    def named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The parameters the current scope trains, named as in the full model."""
        adapters = [(f"image_encoder.{name}", p)
                    for name, p in adapter_parameters(self.image_encoder).items()]
        return [(name, p) for name, p in self.named_parameters()
                if name.startswith(DECODER_PREFIXES)] + adapters

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What an optimiser should step for the current scope (the encoder's frozen weights
        are never in it)."""
        return [p for _name, p in self.named_trainable_parameters()]

    def trained_state(self) -> dict[str, torch.Tensor | dict]:
        """A copy of exactly what the scope trains: the prompt encoder's and mask decoder's
        weights (as :meth:`decoder_state`) plus, with adapters, their tensors and, under
        :data:`LORA_CONFIG_KEY`, their settings as plain values. Saved with ``torch.save``, it
        loads back with ``torch.load(path, weights_only=True)``."""
        state: dict[str, torch.Tensor | dict] = dict(self.decoder_state())
        for name, tensor in adapter_parameters(self.image_encoder).items():
            state[f"image_encoder.{name}"] = tensor.detach().clone()
        if self.lora is not None:
            state[LORA_CONFIG_KEY] = self.lora.as_dict()
        return state

    def load_trained_state(self, state: dict[str, torch.Tensor | dict]) -> None:
        """Put back a :meth:`trained_state`: the scope becomes the state's (adapters rebuilt
        from its recorded settings, or removed when it has none), then every tensor is loaded;
        the keys and shapes must match exactly, or nothing changes."""
        settings = state.get(LORA_CONFIG_KEY)
        config = None if settings is None else LoraConfig.from_dict(settings)
        tensors = {k: v for k, v in state.items() if k != LORA_CONFIG_KEY}
        if not all(isinstance(v, torch.Tensor) for v in tensors.values()):
            raise ValueError("a trained state holds tensors (and the LoRA settings) only")
        expected = {k: tuple(v.shape) for k, v in self._pretrained.items()}
        if config is not None:
            expected |= {f"image_encoder.{name}": shape
                         for name, shape in adapter_shapes(self.image_encoder, config).items()}
        missing = sorted(set(expected) - set(tensors))[:5]
        unexpected = sorted(set(tensors) - set(expected))[:5]
        wrong = sorted(k for k in set(expected) & set(tensors)
                       if tuple(tensors[k].shape) != expected[k])[:5]
        if missing or unexpected or wrong:
            raise ValueError(f"trained weights do not fit {self.model_id}: missing {missing}, "
                             f"unexpected {unexpected}, another shape {wrong}")
        self.set_trainable_scope("decoder" if config is None else "decoder+lora", config)
        self.load_state_dict(tensors, strict=False)

    @torch.no_grad()
    def reset_trained(self) -> None:
        """Back to the pretrained model: the prompt encoder's and decoder's weights as loaded,
        adapters (kept, with their settings) at their initial values, B = 0."""
        self.load_state_dict(self._pretrained, strict=False)
        reset_lora(self.image_encoder)

    # -- encoding ----------------------------------------------------------------------------
    def prepare(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """One image as the encoder's (3, S, S) input, and its resized size inside it."""
        pre = self.preprocessing
        h, w = pre.resized_shape(*image.shape[:2])
        tensor = resized_rgb(image, (h, w))
        if pre.normalisation == "minmax":
            low, high = tensor.min(), tensor.max()
            tensor = (tensor - low) / torch.clamp(high - low, min=1e-8)
        else:
            tensor = _to_uint8_range(tensor)
            mean = torch.tensor(pre.pixel_mean).view(3, 1, 1)
            std = torch.tensor(pre.pixel_std).view(3, 1, 1)
            tensor = (tensor - mean) / std
        padded = torch.zeros((3, pre.size, pre.size), dtype=torch.float32)
        padded[:, :h, :w] = tensor
        return padded, (h, w)

    @torch.inference_mode()
    def encode(self, images: list[np.ndarray], batch_size: int | None = None,
               ) -> list[Embedding]:
        """Encode images (any sizes) in batches (of :attr:`encode_batch_size` by default)."""
        out: list[Embedding] = []
        compiled = self._compiled_encoder
        encoder = compiled if compiled is not None else self.image_encoder
        batch_size = min(batch_size or self.encode_batch_size, len(images)) or 1
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            prepared = [self.prepare(image) for image in chunk]
            batch = torch.stack([p[0] for p in prepared])
            if compiled is not None and len(chunk) < batch_size:
                # one input shape for the compiled graph: pad the last batch
                pad = torch.zeros((batch_size - len(chunk), *batch.shape[1:]))
                batch = torch.cat([batch, pad])
            batch = batch.to(self.device).contiguous(memory_format=torch.channels_last)
            with self._autocast():
                features = encoder(batch).float()[:len(chunk)]
            for image, (_t, resized), feat in zip(chunk, prepared, features, strict=True):
                out.append(Embedding(feat, tuple(image.shape[:2]), resized))
        return out

    def encode_one(self, image: np.ndarray) -> Embedding:
        return self.encode([image], batch_size=1)[0]

    def encode_for_training(self, images: list[np.ndarray]) -> list[Embedding]:
        """Encode ``images`` in one batch, in fp32, with gradients to the adapters (scope
        "decoder+lora"); pass the embeddings to :meth:`decode_low_res`. The encoder runs as in
        :meth:`encode` (normalisation layers on their stored statistics, which never change);
        only the adapters' dropout is active. Without adapters nothing in the encoder trains,
        so the features carry no gradient."""
        if not images:
            return []
        prepared = [self.prepare(image) for image in images]
        batch = torch.stack([p[0] for p in prepared]).to(self.device)
        batch = batch.contiguous(memory_format=torch.channels_last)
        with self._encoder_training_mode(), \
                torch.set_grad_enabled(self.lora is not None), \
                torch.autocast(self.device.type, enabled=False):
            features = self.image_encoder(batch).float()
        return [Embedding(feat, tuple(image.shape[:2]), resized)
                for image, (_t, resized), feat in zip(images, prepared, features, strict=True)]

    @contextmanager
    def _encoder_training_mode(self):
        """The encoder in eval mode (frozen statistics), its adapters in train mode (dropout),
        for one forward; every module's mode is put back afterwards."""
        modes = {m: m.training for m in self.image_encoder.modules()}
        if any(modes.values()):
            self.image_encoder.eval()
        for layer in lora_layers(self.image_encoder).values():
            layer.train()
        try:
            yield
        finally:
            for module, mode in modes.items():
                if module.training != mode:
                    module.training = mode

    # -- decoding ----------------------------------------------------------------------------
    def decode(self, embedding: Embedding, *, boxes: np.ndarray | None = None,
               points: np.ndarray | None = None, point_labels: np.ndarray | None = None,
               mask_logits: torch.Tensor | None = None, multimask: bool = False,
               batch_size: int | None = None, grad: bool = False) -> Decoded:
        """Decode N prompts against one embedding.

        ``boxes``: (N, 4) x0, y0, x1, y1 in item pixels; ``points``: (N, P, 2) x, y with
        ``point_labels`` (N, P) 1 foreground / 0 background; ``mask_logits``: (N, 1, 256, 256)
        low-resolution logits from an earlier decode. Prompts are decoded in batches of
        ``batch_size`` (default 4 on a CPU, where larger batches cost more per prompt, 64 on a
        GPU), so memory stays bounded.
        """
        n = _prompt_count(boxes, points, mask_logits)
        if batch_size is None:
            batch_size = 4 if self.device.type == "cpu" else 64
        parts = [
            self._decode_batch(
                embedding,
                None if boxes is None else boxes[s:s + batch_size],
                None if points is None else points[s:s + batch_size],
                None if point_labels is None else point_labels[s:s + batch_size],
                None if mask_logits is None else mask_logits[s:s + batch_size],
                multimask, grad,
            )
            for s in range(0, n, batch_size)
        ]
        return Decoded(
            logits=torch.cat([p.logits for p in parts]),
            iou=torch.cat([p.iou for p in parts]),
            low_res=torch.cat([p.low_res for p in parts]),
        )

    def decode_each(self, embeddings: list[Embedding], boxes: list[np.ndarray],
                    **options) -> list[Decoded]:
        """Decode per image: ``boxes[i]`` (N_i, 4) against ``embeddings[i]``.

        The official decoder repeats one image embedding per prompt, so B images with B prompts
        cannot go in one call; each image is decoded with all of its prompts batched.
        """
        if len(embeddings) != len(boxes):
            raise ValueError(f"{len(embeddings)} embeddings but {len(boxes)} box sets")
        return [self.decode(e, boxes=b, **options) for e, b in zip(embeddings, boxes, strict=True)]

    def _decode_batch(self, embedding: Embedding, boxes, points, labels, masks,
                      multimask: bool, grad: bool) -> Decoded:
        with torch.set_grad_enabled(grad), self._autocast():
            low_res, iou = self.decode_low_res(embedding, boxes=boxes, points=points,
                                               point_labels=labels, mask_logits=masks,
                                               multimask=multimask)
        low_res = low_res.float()
        return Decoded(self.to_item_frame(low_res, embedding), iou.float(), low_res)

    def decode_low_res(self, embedding: Embedding, *, boxes=None, points=None,
                       point_labels=None, mask_logits=None,
                       multimask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder in one call, prompts in item pixels: low-resolution
        logits (N, M, 256, 256) in the model frame and the predicted IoU (N, M), under whatever
        grad and autocast mode the caller set (training calls it directly, in fp32)."""
        device = self.device
        scale = self._coordinate_scale(embedding)
        box_t = None if boxes is None else torch.as_tensor(
            np.asarray(boxes, np.float32) * scale, device=device)
        point_t = None
        if points is not None:
            coords = torch.as_tensor(np.asarray(points, np.float32) * scale, device=device)
            point_t = (coords, torch.as_tensor(np.asarray(point_labels), device=device,
                                               dtype=torch.int))
        mask_t = None if mask_logits is None else mask_logits.to(device)
        sparse, dense = self.prompt_encoder(points=point_t, boxes=box_t, masks=mask_t)
        return self.mask_decoder(
            image_embeddings=embedding.features[None].to(device, torch.float32),
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )

    def to_item_frame(self, low_res: torch.Tensor, embedding: Embedding) -> torch.Tensor:
        """Low-resolution logits (N, M, 256, 256) → logits at the item's full size."""
        size = self.preprocessing.size
        up = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
        h, w = embedding.resized_shape
        return F.interpolate(up[..., :h, :w], embedding.original_shape, mode="bilinear",
                             align_corners=False)

    def _coordinate_scale(self, embedding: Embedding) -> float:
        return self.preprocessing.size / max(embedding.original_shape)

    def _autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def _to_uint8_range(tensor: torch.Tensor) -> torch.Tensor:
    """Images that are not 0–255 already are min–max scaled to it (SAM expects 8-bit RGB)."""
    low, high = float(tensor.min()), float(tensor.max())
    if low >= 0 and high <= 255 and high > 1:
        return tensor
    return (tensor - low) / max(high - low, 1e-8) * 255.0


def _prompt_count(boxes, points, masks) -> int:
    for prompt in (boxes, points, masks):
        if prompt is not None:
            return len(prompt)
    raise ValueError("give at least one prompt: boxes, points or mask_logits")
