"""Channel-first images: three channels are RGB through embedding and the CAM input; channel
counts the methods cannot take are refused at import with one line naming the file and count.

Every file is written here and imported through the project API, as `weaksam create` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import zarr

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.backbones.sam import SamBackbone
from napari_weaksam.cam.adl_classifier import image_tensor
from napari_weaksam.cli import main
from napari_weaksam.hashing import file_sha256
from napari_weaksam.project import Project
from napari_weaksam.project.catalog import NewItem
from napari_weaksam.project.importer import import_images

HEIGHT, WIDTH = 48, 64


@pytest.fixture(scope="module")
def backbone() -> SamBackbone:
    torch.set_num_threads(2)
    return load_backbone("litemedsam")


def channels_first(count: int, seed: int = 0) -> np.ndarray:
    """(count, H, W) uint8 with a different pattern in each channel."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (count, HEIGHT, WIDTH), dtype=np.uint8)
    for channel in range(count):
        image[channel, 8 * channel:8 * channel + 20, 10:40] = 200
    return image


def write_ome_tiff(path: Path, image: np.ndarray) -> Path:
    tifffile.imwrite(path, image, metadata={"axes": "CYX"})
    return path


def write_ome_zarr(path: Path, image: np.ndarray) -> Path:
    """A one-level OME-Zarr (NGFF 0.4 metadata) with axes c, y, x."""
    group = zarr.open_group(str(path), mode="w")
    level = group.create_array("0", shape=image.shape, dtype=image.dtype, chunks=image.shape)
    level[...] = image
    axes = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
            {"name": "x", "type": "space"}]
    group.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [{"path": "0"}]}]
    return path


def imported(root: Path, files: list[Path]) -> tuple[Project, list[str]]:
    """A new project holding ``files``, and the import's skip reasons."""
    project = Project.create(root)
    report = import_images(project, files)
    return project, [why for _path, why in report.skipped]


def embed_all(project: Project, backbone: SamBackbone) -> list:
    """Fill the embedding cache as `weaksam embed` does; the embeddings in item order."""
    items = project.catalog.items()
    cache = project.embedding_cache(backbone)
    for _ in cache.fill(lambda i: project.item_image(items[i]), range(len(items))):
        pass
    return [cache.get(project.item_image(item)) for item in items]


# -- accepted: three channels first are RGB --------------------------------------------------------
def test_channel_first_rgb_embeds_and_feeds_the_cam_like_channels_last(tmp_path, backbone):
    rgb = channels_first(3)
    files = [write_ome_tiff(tmp_path / "first.ome.tif", rgb),
             write_ome_zarr(tmp_path / "first.ome.zarr", rgb)]
    tifffile.imwrite(tmp_path / "last.tif", np.moveaxis(rgb, 0, -1), photometric="rgb")
    project, skipped = imported(tmp_path / "p", [*files, tmp_path / "last.tif"])
    with project:
        assert skipped == []
        items = project.catalog.items()
        assert [project.source_image(i.source_id).axes for i in items] == ["CYX", "CYX", "YXC"]
        planes = [project.item_image(item) for item in items]
        for plane in planes:
            assert plane.shape == (HEIGHT, WIDTH, 3) and plane.dtype == np.uint8
            np.testing.assert_array_equal(plane, np.moveaxis(rgb, 0, -1))
        first, _zarr, last = embed_all(project, backbone)
        assert first.original_shape == last.original_shape == (HEIGHT, WIDTH)
        torch.testing.assert_close(first.features, last.features, rtol=0, atol=0)
        cam_inputs = [image_tensor(plane, 128) for plane in planes]
        for cam_input in cam_inputs:
            assert cam_input.shape == (3, 128, 128)
            torch.testing.assert_close(cam_input, cam_inputs[-1], rtol=0, atol=0)


def test_channel_first_rgb_runs_through_weaksam_embed(tmp_path, capsys):
    write_ome_tiff(tmp_path / "stain.ome.tif", channels_first(3))
    assert main(["create", str(tmp_path / "p"), str(tmp_path / "stain.ome.tif")]) == 0
    assert main(["embed", str(tmp_path / "p")]) == 0
    assert "1 embeddings computed" in capsys.readouterr().out


def test_rgba_keeps_rgb_and_drops_alpha(tmp_path):
    rgba = np.moveaxis(channels_first(4), 0, -1)
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    project, skipped = imported(tmp_path / "p", [tmp_path / "rgba.tif"])
    with project:
        assert skipped == []
        (item,) = project.catalog.items()
        np.testing.assert_array_equal(project.item_image(item), rgba[..., :3])


# -- refused: counts no mapping fits ---------------------------------------------------------------
@pytest.mark.parametrize("count", [2, 4, 5])
def test_other_channel_counts_are_refused_at_import_naming_file_and_count(tmp_path, count):
    path = write_ome_tiff(tmp_path / f"c{count}.ome.tif", channels_first(count))
    project, skipped = imported(tmp_path / "p", [path])
    with project:
        assert project.catalog.items() == []
    (why,) = skipped
    assert "\n" not in why
    assert why.startswith(f"c{count}.ome.tif: {count} channels (shape ({count}, {HEIGHT}, {WIDTH})"
                          ", channels first) cannot be segmented")


def test_two_channel_zarr_is_refused_by_weaksam_create(tmp_path, capsys):
    write_ome_zarr(tmp_path / "pair.ome.zarr", channels_first(2))
    main(["create", str(tmp_path / "p"), str(tmp_path / "pair.ome.zarr")])
    out = capsys.readouterr().out
    assert "0 files imported" in out
    (line,) = [line for line in out.splitlines() if "skipped" in line and "pair" in line]
    assert "pair.ome.zarr: 2 channels" in line and "cannot be segmented" in line


def test_item_imported_before_the_check_fails_in_one_line_naming_it(tmp_path, capsys):
    """A project made by an earlier version may hold a two-channel item: reading it for the
    pipeline stops with the same message, never a traceback mid-run."""
    path = write_ome_tiff(tmp_path / "old.ome.tif", channels_first(2))
    with Project.create(tmp_path / "p") as project:
        project.catalog.add_source(
            path=str(path), relpath=None, format="tiff", kind="image",
            shape=(2, HEIGHT, WIDTH), axes="CYX", dtype="uint8", spacing=(1.0, 1.0),
            sha256=file_sha256(path), items=[NewItem("old", HEIGHT, WIDTH, 2)],
        )
    code = main(["embed", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("weaksam: error: old.ome.tif: 2 channels") and "\n" not in err
