"""Moving through a project's items while tagging: order, filters, cached tags (no Qt)."""

from __future__ import annotations

from .catalog import ImageClass, Item
from .project import Project

FILTERS: tuple[tuple[str, str], ...] = (
    ("all", "All images"),
    ("untagged", "Not tagged yet"),
    ("tagged", "Tagged"),
    ("no_finding", "No finding"),
)


class TagNavigator:
    """The current item, the filtered order and an in-memory copy of the saved tags.

    The copy is updated only after the project has committed a change (:meth:`record`).
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.items: list[Item] = []
        self.classes: list[ImageClass] = []
        self._tags: dict[int, set[int]] = {}
        self._index: dict[int, int] = {}
        self._filter = "all"
        self._current = -1

    def load(self, project: Project) -> None:
        """Read items, classes and tags; stay on the same item when it still exists."""
        keep = self.current.id if self.current is not None else None
        self.items = project.catalog.items()
        self._index = {item.id: i for i, item in enumerate(self.items)}
        self._tags = project.catalog.all_tags()
        self.reload_classes(project)
        self._current = self._index.get(keep, -1) if keep is not None else -1
        if self._current < 0:
            self._current = self._first_visible()

    def reload_classes(self, project: Project) -> None:
        self.classes = project.catalog.classes()

    # -- state ---------------------------------------------------------------------------------
    @property
    def current(self) -> Item | None:
        return self.items[self._current] if 0 <= self._current < len(self.items) else None

    def is_tagged(self, item: Item) -> bool:
        return item.id in self._tags

    def tags_of(self, item: Item) -> set[int]:
        return set(self._tags.get(item.id, set()))

    def record(self, item: Item, tags: set[int]) -> None:
        """Remember tags that the project has just saved."""
        self._tags[item.id] = set(tags)

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def tagged_count(self) -> int:
        return len(self._tags)

    @property
    def no_finding_count(self) -> int:
        return sum(not tags for tags in self._tags.values())

    def class_counts(self) -> dict[int, int]:
        counts = {c.id: 0 for c in self.classes}
        for tags in self._tags.values():
            for class_id in tags:
                counts[class_id] = counts.get(class_id, 0) + 1
        return counts

    # -- filtering -----------------------------------------------------------------------------
    def set_filter(self, key: str) -> None:
        """``all``, ``untagged``, ``tagged``, ``no_finding`` or ``class:<id>``."""
        self._filter = key
        if self.current is None or not self.matches(self.current):
            self._current = self._first_visible()

    def matches(self, item: Item) -> bool:
        key = self._filter
        if key == "all":
            return True
        if key == "untagged":
            return not self.is_tagged(item)
        if key == "tagged":
            return self.is_tagged(item)
        if key == "no_finding":
            return self.is_tagged(item) and not self._tags[item.id]
        if key.startswith("class:"):
            return int(key.split(":", 1)[1]) in self._tags.get(item.id, set())
        raise ValueError(f"unknown filter {key!r}")

    @property
    def visible_count(self) -> int:
        return sum(self.matches(item) for item in self.items)

    @property
    def position(self) -> int:
        """0-based rank of the current item among the visible ones."""
        return sum(self.matches(item) for item in self.items[: max(self._current, 0)])

    # -- moving --------------------------------------------------------------------------------
    def step(self, direction: int) -> bool:
        """Move to the next (+1) or previous (-1) visible item; False at either end."""
        i = self._current + direction
        while 0 <= i < len(self.items):
            if self.matches(self.items[i]):
                self._current = i
                return True
            i += direction
        return False

    def jump_to_untagged(self) -> bool:
        """Move to the next untagged item after the current one, wrapping around."""
        n = len(self.items)
        for offset in range(1, n + 1):
            i = (self._current + offset) % n
            if not self.is_tagged(self.items[i]):
                self._current = i
                return True
        return False

    @property
    def ids(self) -> set[int]:
        """The ids of every item (whatever the filter)."""
        return set(self._index)

    def go_to(self, item_id: int) -> None:
        self._current = self._index[item_id]

    def go_to_plane(self, source_id: int, display_index: int) -> None:
        """Move to the slice item shown at ``display_index`` of a volume."""
        for i, item in enumerate(self.items):
            if item.source_id == source_id and item.display_index == display_index:
                self._current = i
                return

    def _first_visible(self) -> int:
        return next((i for i, item in enumerate(self.items) if self.matches(item)), -1)
