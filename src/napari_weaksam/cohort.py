"""Per-item work of a cohort spread over Dask distributed workers: encoding, and segmenting new
items with a finished round's models.

Each task is a batch of item ids. A worker opens the project read-only (the writing process
keeps its lock), loads the backbone once per worker process, and writes every result to the
project's embedding cache, which is content-addressed and written atomically (staged, renamed):
a task that runs twice writes the same entries, and a worker killed mid-task loses only the
entries it had not renamed into place, since Dask runs its unfinished tasks on another worker.
Workers never write the catalog: a prediction's label images come back to this process, which
stores them as the new round's proposals (one writer). Training stays in one process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Items per task: small enough that a lost worker costs little, big enough to batch the encoder.
ITEMS_PER_TASK = 8
#: Seconds to wait for a scheduler before saying it does not answer.
CONNECT_TIMEOUT_S = 10

_BACKBONES: dict = {}   # per worker process: the loaded backbone of each model spec


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to load the same backbone as the main process."""

    model: str = "litemedsam"
    checkpoint: str | None = None
    weights_dir: str | None = None
    precision: str = "fp32"

    @classmethod
    def from_args(cls, args, precision: str | None = None) -> ModelSpec:
        """The model flags of a ``weaksam`` command (``--model --checkpoint --weights-dir
        --precision``, or ``precision`` when ``auto`` was decided); ``--device`` and
        ``--compile`` are refused: workers use their CPU."""
        if args.compile or args.device not in ("auto", "cpu"):
            raise ValueError("--dask workers run on their CPU without --compile; leave out "
                             "--device and --compile")
        return cls(args.model, str(args.checkpoint) if args.checkpoint else None,
                   args.weights_dir, precision or args.precision)


class ClusterError(ValueError):
    """The scheduler at the address given could not be reached (the message names it)."""


@contextlib.contextmanager
def dask_client(address: str | None, workers: int = 2) -> Iterator:
    """A client of the scheduler at ``address``, or of a local cluster of ``workers``
    single-threaded processes when no address is given."""
    from distributed import Client, LocalCluster

    if address is None:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        raise ClusterError(f"{address}: the Dask scheduler does not answer ({error}); check "
                           "the address, or leave it out to run a local cluster") from error
    with client:
        yield client


def _backbone(spec: ModelSpec):
    if spec not in _BACKBONES:
        import torch

        from .backbones.loaders import load_backbone

        torch.set_num_threads(1)   # one thread per worker process: the cluster parallelises
        backbone = load_backbone(spec.model, device="cpu", checkpoint=spec.checkpoint,
                                 weights_folder=spec.weights_dir)
        backbone.set_precision(spec.precision)
        _BACKBONES[spec] = backbone
    return _BACKBONES[spec]


def embed_task(root: str, spec: ModelSpec, item_ids: list[int],
               batch_size: int | None) -> int:
    """Encode the items ``item_ids`` not cached yet (runs on a worker); returns how many."""
    from .project import Project

    backbone = _backbone(spec)
    with Project.open(root, read_only=True) as project:
        cache = project.embedding_cache(backbone)
        steps = cache.fill(lambda i: project.item_image(project.catalog.item(item_ids[i])),
                           range(len(item_ids)), batch_size=batch_size, sweep=False)
        while True:
            try:
                next(steps)
            except StopIteration as finished:
                return int(finished.value)


def embed_on_cluster(root: Path, spec: ModelSpec, item_ids: list[int], *,
                     address: str | None = None, workers: int = 2, batch_size: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     client=None) -> int:
    """Fill the project's embedding cache for ``item_ids`` on a Dask cluster (``client``'s, or
    the scheduler at ``address``, or a local one); returns how many embeddings were computed
    (tasks rerun after a lost worker may count some twice)."""
    if client is None:
        with dask_client(address, workers) as own:
            return embed_on_cluster(root, spec, item_ids, batch_size=batch_size,
                                    progress=progress, client=own)
    from distributed import as_completed

    batches = [item_ids[i:i + ITEMS_PER_TASK] for i in range(0, len(item_ids), ITEMS_PER_TASK)]
    futures = [client.submit(embed_task, str(root), spec, batch, batch_size, pure=False)
               for batch in batches]
    computed = 0
    for done, future in enumerate(as_completed(futures), start=1):
        computed += future.result()
        if progress:
            progress(done, len(futures))
    return computed


def predict_task(root: str, spec: ModelSpec, round_id: int,
                 item_ids: list[int]) -> list[tuple[int, np.ndarray, float]]:
    """Segment ``item_ids`` with round ``round_id``'s models (runs on a worker): ``(item id,
    label image, confidence)`` each, for the one writer to store."""
    from .methods.registry import get_method
    from .project import Project

    backbone = _backbone(spec)
    with Project.open(root, read_only=True) as project:
        round_ = next(r for r in project.rounds.rounds() if r.id == round_id)
        predictor = get_method(round_.method).make_predictor(project, backbone, round_)
        items = [project.catalog.item(i) for i in item_ids]
        with predictor.adapted():
            return [(item.id, label, confidence) for item, label, confidence
                    in predictor.segment(project, items, sweep=False)]


def predict_on_cluster(project, spec: ModelSpec, round_, items: list, *,
                       address: str | None = None, workers: int = 2,
                       progress: Callable[[int, int], None] | None = None, client=None) -> int:
    """Segment ``items`` with ``round_``'s models on a Dask cluster; this process stores every
    result as the new round's proposals (see :func:`.methods.prediction.record_round`) and
    returns its id."""
    if client is None:
        with dask_client(address, workers) as own:
            return predict_on_cluster(project, spec, round_, items, progress=progress,
                                      client=own)
    from distributed import as_completed

    from .methods.prediction import record_round

    ids = [item.id for item in items]
    batches = [ids[i:i + ITEMS_PER_TASK] for i in range(0, len(ids), ITEMS_PER_TASK)]
    futures = [client.submit(predict_task, str(project.root), spec, round_.id, batch,
                             pure=False) for batch in batches]

    def results():
        for done, future in enumerate(as_completed(futures), start=1):
            yield from future.result()
            if progress:
                progress(done, len(futures))
    return record_round(project, round_, items, results())
