"""Image-level tags as a training matrix, with the checks every method needs first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..project import ImageClass, Item, Project, ProjectError


@dataclass(frozen=True)
class TaggedProject:
    """What every method reads first: the items, the classes, and the tagged items' classes."""

    items: list[Item]
    classes: list[ImageClass]
    train_index: list[int]      # indices into items of the tagged items
    labels: np.ndarray          # (len(train_index), len(classes)) {0, 1}


def read_tags(project: Project) -> TaggedProject:
    """The project's items, classes and tag matrix; a clear error when there are no classes or
    the tags cannot train a classifier."""
    items = project.catalog.items()
    classes = project.catalog.classes()
    if not classes:
        raise ProjectError(f"{project.root}: the project has no classes; create one and tag items")
    train_index, labels = tag_matrix(project, items, classes)
    return TaggedProject(items, classes, train_index, labels)


def tag_matrix(project: Project, items: list[Item],
               classes: list[ImageClass]) -> tuple[list[int], np.ndarray]:
    """Indices (into ``items``) of the tagged items and their (N, P) {0, 1} class matrix; raises
    a clear error when the tags cannot train a classifier."""
    tags = project.catalog.all_tags()
    train_index = [i for i, item in enumerate(items) if item.id in tags]
    labels = _label_matrix(items, tags, classes, train_index)
    check_tags(project, labels, classes)
    return train_index, labels


def _label_matrix(items: list[Item], tags: dict[int, set[int]], classes: list[ImageClass],
                  train_index: list[int]) -> np.ndarray:
    matrix = np.zeros((len(train_index), len(classes)), dtype=np.float32)
    for row, index in enumerate(train_index):
        present = tags[items[index].id]
        for c, image_class in enumerate(classes):
            matrix[row, c] = float(image_class.id in present)
    return matrix


def check_tags(project: Project, labels: np.ndarray, classes: list[ImageClass]) -> None:
    if len(labels) == 0:
        raise ProjectError(f"{project.root}: no item is tagged yet; tag some items first")
    for c, image_class in enumerate(classes):
        positives = int(labels[:, c].sum())
        if positives == 0:
            raise ProjectError(
                f"class {image_class.name!r} has no tagged item; tag at least a few items with "
                "it, or remove the class"
            )
        if positives == len(labels):
            raise ProjectError(
                f"every tagged item has class {image_class.name!r}; the classifier needs items "
                "without it too (tag some with 0 = no finding)"
            )
