"""``--precision auto``: the project's cached precision first (no encoding again), else bf16 where
the device computes it natively, else fp32; an explicit choice as given."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.backbones.precision import (
    cached_precision,
    choose_precision,
    native_bf16,
    set_auto_precision,
)
from napari_weaksam.backbones.sam import PRECISIONS_BY_DTYPE
from napari_weaksam.cli import main
from napari_weaksam.project import Project


def precision_of(backbone) -> str:
    return PRECISIONS_BY_DTYPE[backbone.autocast_dtype]


def test_an_explicit_precision_is_kept_and_a_wrong_one_refused(litemedsam):
    assert choose_precision("fp16", litemedsam) == ("fp16", "as asked")
    with pytest.raises(ValueError, match="precision 'int8': choose one of auto, fp32"):
        choose_precision("int8", litemedsam)


def test_auto_follows_the_projects_cache_then_the_hardware(litemedsam, sample_copy, tmp_path):
    with Project.open(sample_copy()) as project:        # embedded in fp32
        assert cached_precision(litemedsam, project) == "fp32"
        assert choose_precision("auto", litemedsam, project) == (
            "fp32", "the project's embeddings are cached in it")
    with Project.create(tmp_path / "empty") as project:
        assert cached_precision(litemedsam, project) is None
        expected = "bf16" if native_bf16(litemedsam.device) else "fp32"
        assert choose_precision("auto", litemedsam, project)[0] == expected
    assert precision_of(litemedsam) == "fp32"            # asking changes nothing


def test_the_cache_in_another_precision_wins_over_the_hardware(litemedsam, tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    with Project.create(tmp_path / "p") as project:
        try:
            litemedsam.set_precision("bf16")
            project.embedding_cache(litemedsam).embed(image)
            litemedsam.set_precision("fp32")
            said = set_auto_precision("auto", litemedsam, project)
            assert said == "bf16 (the project's embeddings are cached in it)"
            assert project.embedding_cache(litemedsam).get(image) is not None
        finally:
            litemedsam.set_precision("fp32")


def test_the_cli_says_what_auto_chose(tmp_path, capsys):
    root = tmp_path / "p"
    assert main(["create", str(root)]) == 0
    assert main(["embed", str(root)]) == 0                # no items: nothing to encode
    out = capsys.readouterr().out
    expected = "bf16" if native_bf16(__import__("torch").device("cpu")) else "fp32"
    assert f"encoder precision: {expected} (the CPU " in out
    assert main(["embed", str(root), "--precision", "fp32"]) == 0
    assert "encoder precision" not in capsys.readouterr().out
