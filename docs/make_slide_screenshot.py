"""Regenerate docs/images/slide-overview.png from a real run (about 3 minutes on a CPU):

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/make_slide_screenshot.py

The CMU-1 SVS region (tests/data/slides) imported as 256 px tiles, tagged "epithelium" present or
absent on 32 of its 44 tiles by a person (docs/slides/cmu-1-epithelium-tags.csv), EP-SAM run
from those tags, the tiles stitched, and the Review tab showing one tile over the whole slide
with its stitched label pyramid. Every mask is the method's.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import napari
from make_screenshots import OUT, shoot

from napari_weaksam.cli import main
from napari_weaksam.widgets.launch import open_workspace

REPO = Path(__file__).resolve().parents[1]
SVS = REPO / "tests" / "data" / "slides" / "CMU-1-Small-Region.svs"
TAGS = REPO / "docs" / "slides" / "cmu-1-epithelium-tags.csv"


def make_project(root: Path) -> None:
    steps = (["create", str(root), str(SVS), "--tile-size", "256"],
             ["import-tags", str(root), str(TAGS)],
             ["run", str(root), "--method", "epsam", "--precision", "bf16"],
             ["stitch", str(root)])
    for step in steps:
        if main(step) != 0:
            sys.exit(f"weaksam {' '.join(step)} failed")


def screenshot(root: Path) -> None:
    viewer = napari.Viewer(title="napari-weaksam")
    panel = open_workspace(viewer, root)
    panel.show_tab("Review")
    review = panel.review
    tile = next(e for e in review.queue.entries if e.item.name.endswith("x1536 y2560"))
    review.go_to(tile.item.id)
    review.show_slide()
    viewer.reset_view()
    shoot(viewer, "slide-overview.png")
    panel.tagging.close_project()
    viewer.close()


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "cmu"
        make_project(project)
        screenshot(project)
