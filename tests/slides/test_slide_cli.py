"""The slide commands end to end: create from an SVS, tag the slide, stitch, export."""

from __future__ import annotations

import json

import numpy as np

from conftest import SVS
from napari_weaksam.cli import main
from napari_weaksam.project import Project


def test_slide_commands(tmp_path, capsys):
    project = tmp_path / "p"
    assert main(["create", str(project), str(SVS), "--tile-size", "1024"]) == 0
    assert main(["status", str(project)]) == 0
    assert "1 slides in tiles" in capsys.readouterr().out
    with Project.open(project) as opened:
        opened.catalog.add_class("tumour")
        item = opened.catalog.items()[0]
        mask = np.zeros((item.height, item.width), np.uint8)
        mask[10:30, 10:40] = 1
        opened.labels.add_proposal(item.id, mask, method="test")
    assert main(["tag-slide", str(project), "CMU-1-Small-Region.svs", "--present", "tumour"]) == 0
    assert main(["stitch", str(project)]) == 0
    out = capsys.readouterr().out
    assert "0 reviewed and 1 proposed tiles stitched" in out
    geojson = tmp_path / "labels.geojson"
    assert main(["export-slide", str(project), "CMU-1-Small-Region", str(geojson)]) == 0
    (feature,) = json.loads(geojson.read_text())["features"]
    assert feature["properties"]["classification"]["name"] == "tumour"


def test_slide_commands_fail_in_one_line(tmp_path, capsys):
    project = tmp_path / "p"
    assert main(["create", str(project), str(SVS), "--tile-size", "1024"]) == 0
    assert main(["tag-slide", str(project), "other.svs", "--negative"]) != 0
    assert "other.svs: no slide of that name in the project (slides: CMU-1-Small-Region.svs)" \
        in capsys.readouterr().err
    assert main(["export-slide", str(project), "CMU-1-Small-Region.svs",
                 str(tmp_path / "x.geojson")]) != 0
    assert "not stitched yet" in capsys.readouterr().err
    assert main(["create", str(tmp_path / "q"), str(SVS), "--tile-overlap", "600"]) != 0
    assert "overlap = 600 must be smaller than tile_size = 512" in capsys.readouterr().err
