"""The bundled sample: a few EBHI-Seg H&E patches and one PyRadiomics MR volume, as a project."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from platformdirs import user_cache_dir

from .project import Project
from .project.importer import import_images
from .project.tags_csv import import_tags

SAMPLE_CLASS = "tumour"


def sample_dir() -> Path:
    """The bundled sample files (images, ground-truth masks, tags.csv, ATTRIBUTION.md)."""
    return Path(str(files("napari_weaksam") / "sample_data"))


def default_sample_project_dir() -> Path:
    return Path(user_cache_dir("napari-weaksam")) / "sample-project"


def make_sample_project(dest: str | Path | None = None) -> Path:
    """Create the sample project at ``dest`` (reused if it is already there); returns its path."""
    root = Path(dest) if dest is not None else default_sample_project_dir()
    if Project.is_project(root):
        return root
    src = sample_dir()
    with Project.create(root) as project:
        report = import_images(project, [src / "images"], copy=True)
        if report.skipped:
            raise RuntimeError(f"the bundled sample is damaged: {report.summary()}")
        import_tags(project, src / "tags.csv", class_name=SAMPLE_CLASS)
    return root
