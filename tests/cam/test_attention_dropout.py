import torch

from napari_weaksam.cam.attention_dropout import AttentionDropout


def _features(seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.rand((2, 8, 6, 6), generator=generator)
    features[0, :, 1, 2] += 3.0  # strong peak in sample 0
    features[1, :, 4, 4] += 2.0  # sample 1: two cells above 0.8 × its peak
    features[1, :, 0, 5] += 1.8
    return features


def test_eval_mode_is_identity():
    features = _features()
    adl = AttentionDropout(drop_rate=1.0).eval()
    assert torch.equal(adl(features), features)


def test_drop_mask_zeroes_the_most_attended_positions():
    features = _features()
    adl = AttentionDropout(drop_rate=1.0, threshold=0.8).train()
    out = adl(features)
    attention = features.mean(dim=1)
    dropped = attention >= 0.8 * attention.amax(dim=(1, 2), keepdim=True)
    assert dropped[0].sum() == 1 and dropped[1].sum() == 2
    assert torch.all(out.permute(0, 2, 3, 1)[dropped] == 0)
    assert torch.equal(out.permute(0, 2, 3, 1)[~dropped], features.permute(0, 2, 3, 1)[~dropped])


def test_importance_map_when_nothing_is_dropped():
    features = _features()
    out = AttentionDropout(drop_rate=0.0).train()(features)
    expected = features * torch.sigmoid(features.mean(dim=1, keepdim=True))
    assert torch.allclose(out, expected)


def _choices(adl, features, calls=200):
    """True where a call used the drop mask (the most attended cell became 0)."""
    return [bool(adl(features)[0, 0, 1, 2] == 0) for _ in range(calls)]


def test_seeded_draws_are_reproducible_and_follow_drop_rate():
    features = _features()
    adl = AttentionDropout(drop_rate=0.75).train()
    torch.manual_seed(3)
    first = _choices(adl, features)
    torch.manual_seed(3)
    assert _choices(adl, features) == first
    assert 0.65 < sum(first) / len(first) < 0.85
