"""The project store: a folder with a SQLite catalog, zarr arrays and checkpoints."""

from .catalog import ImageClass, Item, NewItem, Source
from .errors import ProjectError, ProjectLockedError, ReadOnlyProjectError
from .labels import LabelState, Proposal
from .project import Project

__all__ = [
    "ImageClass", "Item", "LabelState", "NewItem", "Project", "ProjectError",
    "ProjectLockedError", "Proposal", "ReadOnlyProjectError", "Source",
]
