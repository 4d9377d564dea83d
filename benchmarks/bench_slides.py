"""Whole slides: time and peak memory of import (tissue + tiling), tile reads, stitching and
export on a large generated slide, and encoding on 1 process vs a 2-worker Dask LocalCluster.

    python benchmarks/bench_slides.py --side 100000 --workdir /tmp/weaksam-bench-slides

The slide is written once by ``synthetic_slide.py`` (real H&E patches on glass, pyramidal
OME-TIFF, 0.25 µm/px) in a child process, so writing it does not count in this process's
memory. Tiles are cut at the default 1 µm/px (level 2), 512 px, or from ``--level``. To
measure stitching at this scale without running a method on thousands of tiles, each tile gets
a stand-in proposal: where its
dark, stained pixels are dense. The peak resident memory printed after each stage is this
process's high-water mark so far (``ru_maxrss``); encoding runs last because torch and the model
alone take several hundred MB.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from synthetic_slide import write_slide

from napari_weaksam.io import read_image
from napari_weaksam.project import Project
from napari_weaksam.project.importer import import_images
from napari_weaksam.slides.export import export_slide_labels
from napari_weaksam.slides.settings import TilingSettings
from napari_weaksam.slides.stitching import stitch_slide

ROWS: list[tuple[str, str, str, str]] = []


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def record(stage: str, seconds: float, amount: str) -> None:
    ROWS.append((stage, f"{seconds:.1f}", amount, f"{peak_mb():.0f}"))
    print(f"  {stage}: {seconds:.1f} s, {amount}, peak RSS {peak_mb():.0f} MB", flush=True)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def stand_in_mask(tile: np.ndarray) -> np.ndarray:
    """Where dark stained pixels are dense (a 31 px neighbourhood): smooth regions, as a
    segmentation gives, made without a method."""
    dark = (tile[..., :3].mean(axis=-1) < 150).astype(np.float32)
    return (ndimage.uniform_filter(dark, 31) > 0.5).astype(np.uint8)


def make_slide(path: Path, side: int) -> None:
    if path.exists():
        return
    print(f"writing a {side} × {side} px slide to {path} (a child process) …", flush=True)
    child = multiprocessing.get_context("spawn").Process(target=write_slide, args=(path, side))
    start = time.perf_counter()
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit("writing the slide failed")
    print(f"  written in {time.perf_counter() - start:.0f} s, "
          f"{path.stat().st_size / 1024**2:.0f} MB", flush=True)


def bench_import(root: Path, slide: Path, level: int):
    shutil.rmtree(root, ignore_errors=True)
    project = Project.create(root)
    image, seconds = timed(lambda: read_image(slide, lazy=True))
    record("open (lazy levels)", seconds, f"{len(image.levels)} levels, level 0 "
           f"{image.shape[1]} × {image.shape[0]} px")
    tiling = TilingSettings(level=level)
    report, seconds = timed(lambda: import_images(project, [slide], tiling=tiling))
    items = project.catalog.items()
    tiling = project.catalog.sources()[0].tiling
    grid = -(-tiling["level_shape"][0] // 512) * -(-tiling["level_shape"][1] // 512)
    record("import: tissue + tiling", seconds,
           f"{len(items)} tissue tiles of {grid} at level {tiling['level']} "
           f"({len(items) / seconds:.0f} tiles/s)")
    return project, items, report


def bench_labels(project: Project, items: list, out: Path) -> None:
    project.catalog.ensure_class("nuclei")

    def add_all():
        for item in items:
            project.labels.add_proposal(item.id, stand_in_mask(project.item_image(item)),
                                        method="stand-in")
    _, seconds = timed(add_all)
    record("read tiles + write stand-in proposals", seconds,
           f"{len(items) / seconds:.1f} tiles/s")
    source = project.catalog.sources()[0]
    report, seconds = timed(lambda: stitch_slide(project, source))
    record("stitch", seconds, f"{report.levels} levels, {len(items) / seconds:.1f} tiles/s")
    for name in ("labels.ome.tif", "labels.geojson"):
        target = out / name
        target.unlink(missing_ok=True)
        _, seconds = timed(lambda t=target: export_slide_labels(project, source, t))
        record(f"export {name}", seconds, f"{target.stat().st_size / 1024**2:.1f} MB")


def bench_encode(project: Project, items: list, count: int, workers: int) -> None:
    import torch

    from napari_weaksam.backbones.loaders import load_backbone
    from napari_weaksam.cohort import ModelSpec, embed_on_cluster

    torch.set_num_threads(2)
    chosen = items[:: max(1, len(items) // count)][:count]
    backbone = load_backbone("litemedsam")
    cache = project.embedding_cache(backbone)
    cache.clear()

    def one_process():
        steps = cache.fill(lambda i: project.item_image(chosen[i]), range(len(chosen)))
        for _ in steps:
            pass
    _, seconds = timed(one_process)
    record("encode, 1 process (2 threads)", seconds, f"{len(chosen) / seconds:.2f} tiles/s")
    cache.clear()
    ids = [i.id for i in chosen]
    _, seconds = timed(lambda: embed_on_cluster(project.root, ModelSpec(), ids, workers=workers))
    record(f"encode, {workers}-worker LocalCluster", seconds,
           f"{len(chosen) / seconds:.2f} tiles/s (worker start and model load included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/weaksam-bench-slides"))
    parser.add_argument("--encode", type=int, default=16, help="tiles to encode (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--level", type=int, default=-1,
                        help="pyramid level to cut tiles from (-1: nearest 1 µm/px)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    slide = args.workdir / f"slide-{args.side}.ome.tif"
    make_slide(slide, args.side)
    project, items, _ = bench_import(args.workdir / "project", slide, args.level)
    bench_labels(project, items, args.workdir)
    if args.encode:
        bench_encode(project, items, args.encode, args.workers)
    project.close()
    print(f"\n{args.side} × {args.side} px slide ({slide.stat().st_size / 1024**2:.0f} MB)")
    print(f"| {'stage':<40} | {'s':>7} | {'what':<58} | peak RSS MB |")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 60}|-------------|")
    for stage, seconds, amount, peak in ROWS:
        print(f"| {stage:<40} | {seconds:>7} | {amount:<58} | {peak:>11} |")


if __name__ == "__main__":
    main()
