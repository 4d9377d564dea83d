"""LoRA adapters on the image encoder and the backbone's trainable scopes, with real LiteMedSAM.

Training steps go through the real encoder on a small synthetic image (a bright disc) and its mask;
the official SAM ViT's attention is checked on a small randomly initialised ViT of the official
architecture (its released weights are not bundled).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention as SamViTAttention
from segment_anything.modeling.image_encoder import ImageEncoderViT

from napari_weaksam.backbones.embedding_cache import EmbeddingCache
from napari_weaksam.backbones.loaders import LITEMEDSAM_PREPROCESSING, load_backbone
from napari_weaksam.backbones.lora import (
    LoraConfig,
    LoraQkv,
    adapter_parameters,
    add_lora,
    lora_layers,
    qkv_layout,
    remove_lora,
)
from napari_weaksam.backbones.sam import LORA_CONFIG_KEY

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


# -- fixtures and helpers --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loaded():
    """A LiteMedSAM of this module's own (the tests change its adapters and weights)."""
    torch.set_num_threads(2)
    return load_backbone("litemedsam")


@pytest.fixture
def backbone(loaded):
    """The module's backbone as loaded: no adapters, pretrained decoder."""
    loaded.set_trainable_scope("decoder")
    loaded.reset_trained()
    yield loaded
    loaded.set_trainable_scope("decoder")
    loaded.reset_trained()


@pytest.fixture(scope="module")
def disc() -> tuple[np.ndarray, np.ndarray]:
    """A 96 x 80 grey image with a bright disc, and the disc's mask."""
    yy, xx = np.mgrid[:96, :80]
    mask = (yy - 50) ** 2 + (xx - 36) ** 2 < 20 ** 2
    rng = np.random.default_rng(3)
    image = (0.2 + 0.6 * mask + 0.05 * rng.standard_normal(mask.shape)).astype(np.float32)
    return image, mask


def encoder_frozen_state(backbone) -> dict[str, torch.Tensor]:
    """Every tensor of the image encoder except its adapters (buffers such as the normalisation
    statistics included), copied."""
    adapters = set(adapter_parameters(backbone.image_encoder))
    return {k: v.detach().clone() for k, v in backbone.image_encoder.state_dict().items()
            if k not in adapters}


def decoder_parameter_names(backbone) -> set[str]:
    return ({f"prompt_encoder.{n}" for n, _p in backbone.prompt_encoder.named_parameters()}
            | {f"mask_decoder.{n}" for n, _p in backbone.mask_decoder.named_parameters()})


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert not changed, f"{len(changed)} tensors differ, e.g. {changed[:3]}"


def training_step(backbone, image: np.ndarray, mask: np.ndarray,
                  optimiser: torch.optim.Optimizer) -> float:
    """One step of box-prompted BCE through :meth:`encode_for_training` and the decoder."""
    embedding = backbone.encode_for_training([image])[0]
    ys, xs = np.nonzero(mask)
    box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    low_res, _iou = backbone.decode_low_res(embedding, boxes=box)
    logits = backbone.to_item_frame(low_res, embedding)[0, 0]
    loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(mask).float())
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.detach())


def randomise_b(layer: LoraQkv, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in layer.adapters():
            if key.endswith("_b"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator))


# -- the adapter layer -----------------------------------------------------------------------------
def test_tinyvit_adapters_change_only_q_and_v(loaded):
    """TinyViT's qkv is laid out per head as [q, k, v]; the adapters must reach q and v of every
    head and leave k exactly as it was, read the way the attention itself splits it."""
    attention = loaded.image_encoder.layers[2].blocks[0].attn
    layout = qkv_layout(attention)
    layer = LoraQkv(attention.qkv, layout, LoraConfig(), torch.Generator().manual_seed(0))
    randomise_b(layer, 1)
    x = torch.randn(2, 7, attention.qkv.in_features)

    def split(out):
        return out.view(2, 7, attention.num_heads, -1).split(
            [attention.key_dim, attention.key_dim, attention.d], dim=3)

    with torch.no_grad():
        q0, k0, v0 = split(attention.qkv(x))
        q1, k1, v1 = split(layer(x))
    assert torch.equal(k0, k1)
    for before, after in ((q0, q1), (v0, v1)):  # every head of q and v moved
        assert (before - after).abs().amax(dim=(0, 1, 3)).min() > 1e-3


def test_sam_vit_adapters_change_only_q_and_v():
    """Official SAM ViT attention: qkv is [q (dim), k (dim), v (dim)], heads inside each."""
    torch.manual_seed(0)
    attention = SamViTAttention(dim=64, num_heads=4)
    layer = LoraQkv(attention.qkv, qkv_layout(attention), LoraConfig(rank=4),
                    torch.Generator().manual_seed(0))
    randomise_b(layer, 2)
    x = torch.randn(1, 5, 6, 64)

    def split(out):  # as the attention's forward does
        return out.reshape(1, 30, 3, 4, -1).permute(2, 0, 3, 1, 4).unbind(0)

    with torch.no_grad():
        q0, k0, v0 = split(attention.qkv(x))
        q1, k1, v1 = split(layer(x))
    assert torch.equal(k0, k1)
    for before, after in ((q0, q1), (v0, v1)):
        assert (before - after).abs().amax(dim=(0, 2, 3)).min() > 1e-3


def test_add_lora_on_an_official_vit_adapts_every_block_and_freezes_the_rest():
    torch.manual_seed(0)
    encoder = ImageEncoderViT(img_size=64, patch_size=16, embed_dim=64, depth=3, num_heads=4,
                              out_chans=32, window_size=2, global_attn_indexes=(2,))
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = encoder(image)
    names = add_lora(encoder, LoraConfig(rank=8))
    assert names == [f"blocks.{i}.attn.qkv" for i in range(3)]
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == set(adapter_parameters(encoder))
    assert {n.rsplit(".", 1)[1] for n in trainable} == {"lora_q_a", "lora_q_b", "lora_v_a",
                                                        "lora_v_b"}
    with torch.no_grad():
        assert torch.equal(encoder(image), before)  # B = 0: the same encoder
    remove_lora(encoder)
    assert not lora_layers(encoder)
    assert type(encoder.blocks[0].attn.qkv) is torch.nn.Linear
    with torch.no_grad():
        assert torch.equal(encoder(image), before)


def test_lora_settings_are_checked():
    for bad in ({"rank": 0}, {"target": "qx"}, {"target": "qq"}, {"dropout": 1.0}):
        with pytest.raises(ValueError):
            LoraConfig(**bad)
    with pytest.raises(ValueError, match="keys"):
        LoraConfig.from_dict({"rank": 8})


# -- scopes --------------------------------------------------------------------------------------
def test_decoder_scope_trains_the_decoder_only(backbone, disc):
    image, mask = disc
    assert backbone.trainable_scope == "decoder" and backbone.lora is None
    names = [n for n, _p in backbone.named_trainable_parameters()]
    assert set(names) == decoder_parameter_names(backbone)
    encoder_ids = {id(p) for p in backbone.image_encoder.parameters()}
    assert not encoder_ids & {id(p) for p in backbone.trainable_parameters()}
    frozen, decoder = encoder_frozen_state(backbone), backbone.decoder_state()
    optimiser = torch.optim.AdamW(backbone.trainable_parameters(), lr=1e-3)
    training_step(backbone, image, mask, optimiser)
    assert_same(encoder_frozen_state(backbone), frozen)
    assert any(not torch.equal(v, decoder[k]) for k, v in backbone.decoder_state().items())
    assert all(p.grad is None for p in backbone.image_encoder.parameters())


def test_adapters_at_init_encode_as_the_pretrained_encoder(backbone, disc):
    image, _mask = disc
    plain = backbone.encode_one(image).features
    backbone.set_trainable_scope("decoder+lora", LoraConfig(rank=8, alpha=16.0))
    assert backbone.trainable_scope == "decoder+lora"
    assert len(lora_layers(backbone.image_encoder)) == 10  # TinyViT's attention blocks
    adapted = backbone.encode_one(image).features
    torch.testing.assert_close(adapted, plain, rtol=0, atol=1e-6)
    assert torch.equal(adapted, plain)  # B = 0 adds exact zeros
    for_training = backbone.encode_for_training([image])[0].features
    assert for_training.requires_grad and for_training.dtype == torch.float32
    torch.testing.assert_close(for_training.detach(), plain, rtol=0, atol=1e-5)


def test_a_step_through_the_encoder_moves_the_adapters_only(backbone, disc):
    image, mask = disc
    backbone.set_trainable_scope("decoder+lora")
    trainable = dict(backbone.named_trainable_parameters())
    adapters = {f"image_encoder.{k}" for k in adapter_parameters(backbone.image_encoder)}
    assert set(trainable) == decoder_parameter_names(backbone) | adapters
    assert all(not p.requires_grad for n, p in backbone.image_encoder.named_parameters()
               if f"image_encoder.{n}" not in adapters)
    frozen = encoder_frozen_state(backbone)
    before = {k: v.detach().clone() for k, v in adapter_parameters(backbone.image_encoder).items()}
    backbone.train()  # even in train mode the encoder's statistics must not move
    try:
        training_step(backbone, image, mask,
                      torch.optim.AdamW(backbone.trainable_parameters(), lr=1e-3))
    finally:
        backbone.eval()
    after = adapter_parameters(backbone.image_encoder)
    moved_b = [k for k in before if k.endswith("_b") and not torch.equal(before[k], after[k])]
    assert len(moved_b) == 20  # q and v of each of the 10 blocks
    assert_same(encoder_frozen_state(backbone), frozen)
    assert all(p.grad is None for n, p in backbone.image_encoder.named_parameters()
               if n not in before)


def test_trained_state_saves_resets_and_loads_bit_exactly(backbone, disc, tmp_path):
    image, mask = disc
    pretrained_decoder = backbone.decoder_state()
    pretrained_features = backbone.encode_one(image).features
    backbone.set_trainable_scope("decoder+lora", LoraConfig(rank=4, alpha=8.0, seed=5))
    initial_adapters = {k: v.detach().clone()
                        for k, v in adapter_parameters(backbone.image_encoder).items()}
    optimiser = torch.optim.AdamW(backbone.trainable_parameters(), lr=1e-3)
    for _ in range(3):
        training_step(backbone, image, mask, optimiser)
    trained = backbone.trained_state()
    trained_features = backbone.encode_one(image).features
    assert not torch.equal(trained_features, pretrained_features)
    assert trained[LORA_CONFIG_KEY] == {"rank": 4, "alpha": 8.0, "dropout": 0.0,
                                        "target": "qv", "seed": 5}
    path = tmp_path / "trained.pt"
    torch.save(trained, path)

    backbone.reset_trained()
    assert_same(backbone.decoder_state(), pretrained_decoder)
    assert_same({k: v.detach() for k, v in adapter_parameters(backbone.image_encoder).items()},
                initial_adapters)
    assert torch.equal(backbone.encode_one(image).features, pretrained_features)

    backbone.load_trained_state(torch.load(path, map_location="cpu", weights_only=True))
    loaded = backbone.trained_state()
    assert loaded[LORA_CONFIG_KEY] == trained[LORA_CONFIG_KEY]
    assert_same({k: v for k, v in loaded.items() if k != LORA_CONFIG_KEY},
                {k: v for k, v in trained.items() if k != LORA_CONFIG_KEY})
    assert torch.equal(backbone.encode_one(image).features, trained_features)

    # a backbone without adapters rebuilds them from the recorded settings
    backbone.set_trainable_scope("decoder")
    backbone.reset_trained()
    backbone.load_trained_state(torch.load(path, map_location="cpu", weights_only=True))
    assert backbone.lora == LoraConfig(rank=4, alpha=8.0, seed=5)
    assert torch.equal(backbone.encode_one(image).features, trained_features)

    # a decoder-only state takes the adapters away again
    backbone.load_trained_state(pretrained_decoder)
    assert backbone.lora is None
    assert torch.equal(backbone.encode_one(image).features, pretrained_features)


def test_load_trained_state_is_strict(backbone):
    backbone.set_trainable_scope("decoder+lora")
    state = backbone.trained_state()
    key = next(k for k in state if ".lora_v_b" in k)
    missing = {k: v for k, v in state.items() if k != key}
    extra = state | {"image_encoder.neck.0.weight": torch.zeros(1)}
    reshaped = state | {key: torch.zeros(3, 8)}
    other_rank = state | {LORA_CONFIG_KEY: state[LORA_CONFIG_KEY] | {"rank": 4}}
    no_settings = {k: v for k, v in state.items() if k != LORA_CONFIG_KEY}
    for bad in (missing, extra, reshaped, other_rank, no_settings):
        with pytest.raises(ValueError, match="do not fit"):
            backbone.load_trained_state(bad)
        assert backbone.lora == LoraConfig()  # refused before anything changed
    with pytest.raises(ValueError, match="scope"):
        backbone.set_trainable_scope("encoder")


def test_decoder_state_keeps_its_meaning_with_adapters(backbone):
    plain = backbone.decoder_state()
    assert backbone.trained_state().keys() == plain.keys()
    backbone.set_trainable_scope("decoder+lora")
    assert backbone.decoder_state().keys() == plain.keys()
    backbone.load_decoder_state(plain)
    assert backbone.lora is not None  # the decoder's weights only: adapters stay


# -- the embedding cache -------------------------------------------------------------------------
def test_cache_signature_follows_the_adapter_weights(backbone, disc, tmp_path):
    image, _mask = disc
    plain = (f"litemedsam-{backbone.weights_sha256[:16]}-"
             f"{LITEMEDSAM_PREPROCESSING.signature()}-fp32")
    assert backbone.cache_signature() == plain
    cache = EmbeddingCache(tmp_path, backbone)
    cache.embed(image)
    backbone.set_trainable_scope("decoder+lora")
    assert backbone.cache_signature() == plain  # B = 0: the pretrained encoder, same embeddings
    assert cache.has(image)
    layers = list(lora_layers(backbone.image_encoder).values())
    randomise_b(layers[3], 7)
    first = backbone.cache_signature()
    assert first.startswith(plain + "-lora") and first == backbone.cache_signature()
    assert not cache.has(image)
    with torch.no_grad():
        layers[3].lora_v_b[0, 0] += 1e-3
    second = backbone.cache_signature()
    assert second not in (plain, first)
    cache.embed(image)
    assert cache.has(image) and cache.folder.name == second
    backbone.reset_trained()
    assert backbone.cache_signature() == plain
    backbone.set_trainable_scope("decoder")
    assert backbone.cache_signature() == plain
