"""Encoding on a 2-worker Dask LocalCluster: a worker killed mid-run loses only its unfinished
work, and the cache ends with the same embeddings as one process."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from napari_weaksam.cli import main
from napari_weaksam.cohort import ModelSpec, dask_client, embed_on_cluster, embed_task
from napari_weaksam.project import Project
from napari_weaksam.sample import make_sample_project

pytestmark = pytest.mark.slow

ITEMS = 6    # the sample's first items: H&E patches


def _embeddings(root: Path) -> dict[str, np.ndarray]:
    folders = list((root / "cache" / "embeddings").iterdir())
    assert len(folders) == 1
    return {p.name: np.asarray(zarr.open_array(str(p), mode="r")[...])
            for p in folders[0].glob("*.zarr")}


def test_cluster_survives_a_killed_worker_and_matches_one_process(tmp_path, embedded_sample):
    root = make_sample_project(tmp_path / "sample")
    with Project.open(root) as project:           # the writer holds its lock; workers read
        ids = [i.id for i in project.catalog.items()[:ITEMS]]
        with dask_client(None, workers=2) as client:
            first = client.submit(embed_task, str(root), ModelSpec(), ids[:2], 2, pure=False)
            assert first.result() == 2
            victim = next(iter(client.scheduler_info()["workers"]))
            futures = [client.submit(embed_task, str(root), ModelSpec(), ids[i:i + 2], 2,
                                     pure=False) for i in range(2, ITEMS, 2)]
            client.run(os._exit, 1, workers=[victim], on_error="ignore")   # dies mid-run
            assert sum(f.result() for f in futures) >= ITEMS - 2
            assert embed_on_cluster(root, ModelSpec(), ids, client=client) == 0  # all cached
    mine, reference = _embeddings(root), _embeddings(embedded_sample)
    assert len(mine) == ITEMS and set(mine) <= set(reference)
    for key, value in mine.items():   # one thread per worker, two in the reference: float noise
        np.testing.assert_allclose(value, reference[key], atol=2e-3)
    assert not any((root / "cache" / "embeddings").glob("*/.tmp/*/zarr.json"))


def test_a_scheduler_that_does_not_answer_is_one_line(tmp_path, capsys):
    root = make_sample_project(tmp_path / "sample")
    assert main(["embed", str(root), "--dask", "tcp://127.0.0.1:9"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("weaksam: error: tcp://127.0.0.1:9: the Dask scheduler does not answer")
    assert len(err.splitlines()) == 1
