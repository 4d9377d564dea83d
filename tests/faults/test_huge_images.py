"""Huge images: `weaksam embed` on a 20 000 × 20 000 TIFF in bounded memory, and one clear error
naming the file when an image cannot fit in memory at all.

The files are tiled and compressed (mostly zeros), so they are small on disk. Two `weaksam embed`
commands run one after the other in a child process, through the entry point the `weaksam`
script calls (``napari_weaksam.cli.main``), which reports its peak resident memory after each:

1. a project of a 300 × 400 image and a 40 000 × 40 000 zarr, under an address-space limit the
   zarr's pixels do not fit in: the small image is embedded (the baseline: model, encoder pass),
   then the command stops with one line naming the zarr;
2. the 20 000 × 20 000 TIFF, under a limit 2 GiB above what the process maps (the old
   whole-image float conversion needed about 9 GiB more), so a regression fails fast with an
   out-of-memory error instead of filling the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import torch.nn.functional as F
import zarr

from napari_weaksam.backbones.resize import resize_in_blocks
from napari_weaksam.backbones.sam import to_rgb_float
from napari_weaksam.project import Project
from napari_weaksam.project.importer import import_images

HUGE = 20_000          # side of the TIFF that is embedded (400 MB of uint8 pixels decoded)
TOO_BIG = 40_000       # side of the zarr that cannot be decoded under the limit (1.6 GB)
TILE = 1024
EMBED_HEADROOM = 2 * 1024**3   # address space the huge embed may add
DECODE_HEADROOM = 1024**3      # less than the too-big image needs
EXTRA_BOUND = 256 * 1024**2    # beyond its decoded pixels: one 64 MB float32 strip and buffers

CHILD = textwrap.dedent("""
    import contextlib, gc, io, json, resource, sys
    import napari_weaksam.backbones.loaders  # torch's libraries mapped before any limit is set
    from napari_weaksam.cli import main

    def mapped():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize"):
                return int(line.split()[1]) * 1024

    results = []
    for argv, headroom in json.loads(sys.argv[1]):
        gc.collect()
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (mapped() + headroom, hard))
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = main(argv)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        results.append({"rc": rc, "stderr": err.getvalue(), "peak": peak})
    print(json.dumps(results))
""")


def write_tiled_tiff(path: Path, size: int) -> Path:
    """A (size, size) uint8 TIFF written tile by tile: zeros with a bright bar in some tiles."""
    def tiles():
        for row in range(0, size, TILE):
            for col in range(0, size, TILE):
                tile = np.zeros((TILE, TILE), np.uint8)
                if (row + col) // TILE % 7 == 0:
                    tile[100:300, 200:600] = 200
                yield tile

    tifffile.imwrite(path, tiles(), shape=(size, size), dtype=np.uint8, tile=(TILE, TILE),
                     compression="zlib")
    return path


def write_sparse_zarr(path: Path, size: int) -> Path:
    """A (size, size) uint8 zarr array with one small bright region (empty chunks are not
    stored)."""
    array = zarr.create_array(store=str(path), shape=(size, size), chunks=(4096, 4096),
                              dtype=np.uint8, fill_value=0)
    array[100:300, 100:500] = 200
    return path


def new_project(root: Path, images: list[Path]) -> Path:
    with Project.create(root) as project:
        report = import_images(project, images)
    assert report.items == len(images), report.summary()
    return root


def stored_embeddings(project: Path) -> list[dict]:
    """The attributes of every embedding cached in ``project``."""
    found = (project / "cache" / "embeddings").glob("*/*.zarr")
    return [dict(zarr.open_array(str(path), mode="r").attrs) for path in found]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The two commands' exit codes, error output and peak memory, and their projects."""
    folder = tmp_path_factory.mktemp("huge")
    small = np.zeros((300, 400), np.uint8)
    small[50:100, 60:200] = 200
    tifffile.imwrite(folder / "small.tif", small)
    too_big = write_sparse_zarr(folder / "too_big.zarr", TOO_BIG)
    projects = {
        "mixed": new_project(folder / "mixed", [folder / "small.tif", too_big]),
        "huge": new_project(folder / "huge", [write_tiled_tiff(folder / "huge.tif", HUGE)]),
    }
    plan = [[["embed", str(projects["mixed"]), "--batch-size", "1"], DECODE_HEADROOM],
            [["embed", str(projects["huge"])], EMBED_HEADROOM]]
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(plan)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    mixed, huge = json.loads(done.stdout.splitlines()[-1])
    return {"projects": projects, "mixed": mixed, "huge": huge}


@pytest.mark.slow
def test_huge_tiff_embeds_in_bounded_memory(runs: dict) -> None:
    huge = runs["huge"]
    assert huge["rc"] == 0, huge["stderr"]
    extra = huge["peak"] - runs["mixed"]["peak"] - HUGE * HUGE  # beyond its own uint8 pixels
    print(f"peak {huge['peak'] / 2**20:.0f} MiB; {extra / 2**20:.0f} MiB more than the small "
          "image's embed besides the decoded pixels")
    assert extra <= EXTRA_BOUND
    (attrs,) = stored_embeddings(runs["projects"]["huge"])
    assert attrs["original_shape"] == [HUGE, HUGE]
    assert attrs["resized_shape"] == [256, 256]


@pytest.mark.slow
def test_image_too_big_for_memory_is_one_line_naming_the_file(runs: dict) -> None:
    mixed = runs["mixed"]
    assert mixed["rc"] != 0
    lines = mixed["stderr"].strip().splitlines()
    assert len(lines) == 1, mixed["stderr"]
    assert lines[0].startswith("weaksam: error: too_big.zarr: ")
    assert "40000 × 40000 uint8 pixels" in lines[0]
    assert "does not fit in the available memory" in lines[0]
    (attrs,) = stored_embeddings(runs["projects"]["mixed"])  # the small image's is kept
    assert attrs["original_shape"] == [300, 400]


# -- the strip-wise resize agrees with torch's whole-image resize ---------------------------------
def whole_image_resize(image: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(to_rgb_float(image).transpose(2, 0, 1)))
    return F.interpolate(tensor[None], shape, mode="bilinear", align_corners=False,
                         antialias=True)[0]


@pytest.mark.parametrize(("shape", "dtype", "size", "block_bytes"), [
    ((3000, 2000), np.uint16, (256, 171), 1 << 20),
    ((1500, 2500, 3), np.uint8, (614, 1024), 1 << 21),
    ((700, 900, 4), np.uint8, (199, 256), 1 << 18),
    ((5000, 37), np.float32, (1024, 8), 1 << 14),
    ((300, 40), np.uint8, (256, 34), 1 << 12),   # upsampled
])
def test_strips_match_the_whole_image_resize(shape, dtype, size, block_bytes) -> None:
    image = (np.random.default_rng(0).random(shape) * 1000).astype(dtype)
    expected = whole_image_resize(image, size)
    got = resize_in_blocks(image, size, block_bytes=block_bytes)
    assert got.shape == (3, *size) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=2e-5, atol=1e-4 * float(expected.abs().max()))


def test_strips_refuse_nan_like_the_whole_image_path() -> None:
    image = np.ones((400, 300), np.float32)
    image[350, 10] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        resize_in_blocks(image, (256, 192), block_bytes=1 << 14)
