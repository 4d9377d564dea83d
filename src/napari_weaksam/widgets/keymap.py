"""The plugin's one key map in a viewer: the same keys work whatever layer is selected.

napari gives the *selected layer's* keys priority over the viewer's (with the image layer
selected, ``1`` and ``2`` switch its pan/zoom and transform modes; on a Labels layer ``E`` is the
eraser). So each key is bound on the viewer **and** on every layer the plugin shows (the image,
the CAM and map layers, "proposal", "your label", "SAM boxes"); layers a person adds keep
napari's keys. While an edit is open, the layer being painted keeps napari's painting keys (its
tools on the digits, ``Ctrl+Z`` undoes a stroke) and only the keys in :data:`EDIT_KEYS` stay ours.

Docks register what a key does (:meth:`KeyMap.register`); when two docks register one key (``N``
in Tagging and in Review), the *active* owner's action runs (the workspace's current tab), else
the most recently registered one. :meth:`KeyMap.sheet` lists every key for the shortcut sheet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .item_view import IMAGE_LAYER_META
from .review_layers import REVIEW_META

if TYPE_CHECKING:
    import napari

BOX_LAYER = "SAM boxes"
EDIT_KEYS = ("e", "Escape", "b")   # what stays ours on the layer being painted


@dataclass(frozen=True)
class _Binding:
    owner: object
    action: Callable[[], None]
    help: str


class KeyMap:
    """Binds the plugin's keys on the viewer and on the plugin's layers."""

    def __init__(self, viewer: napari.Viewer) -> None:
        self.viewer = viewer
        self.active_owner: object | None = None
        self._bindings: dict[str, list[_Binding]] = {}
        self._painting = None          # the layer being painted, if any
        viewer.layers.events.inserted.connect(self._on_inserted)

    # -- registering ---------------------------------------------------------------------------
    def register(self, owner: object, keys: dict[str, tuple[Callable[[], None], str]]) -> None:
        """``owner``'s actions: key → (action, help text). Bound at once everywhere; a Qt
        ``owner``'s keys are forgotten when it is destroyed."""
        for key, (action, text) in keys.items():
            bindings = [b for b in self._bindings.get(key, []) if b.owner is not owner]
            self._bindings[key] = [*bindings, _Binding(owner, action, text)]
        self._bind_everywhere(list(keys))
        destroyed = getattr(owner, "destroyed", None)
        if destroyed is not None:
            destroyed.connect(lambda *_: self.forget(owner))

    def forget(self, owner: object) -> None:
        """``owner`` is gone (a dock closed): its keys no longer run."""
        emptied = []
        for key, bindings in self._bindings.items():
            self._bindings[key] = [b for b in bindings if b.owner is not owner]
            if not self._bindings[key]:
                emptied.append(key)
        for key in emptied:
            del self._bindings[key]
            self._unbind(self.viewer, key)
            for layer in self._owned_layers():
                self._unbind(layer, key)
        if self.active_owner is owner:
            self.active_owner = None

    def press(self, key: str) -> bool:
        """Run what ``key`` does now; False when nothing is registered for it."""
        binding = self._resolve(key)
        if binding is None:
            return False
        binding.action()
        return True

    # -- editing -------------------------------------------------------------------------------
    def set_painting(self, layer) -> None:
        """``layer`` is being painted (None: nothing is): it keeps napari's painting keys."""
        previous, self._painting = self._painting, layer
        if previous is not None and previous in self.viewer.layers:
            self._bind_layer(previous, list(self._bindings))
        if layer is not None:
            for key in self._bindings:
                if key not in EDIT_KEYS:
                    self._unbind(layer, key)

    # -- help ----------------------------------------------------------------------------------
    def sheet(self) -> list[tuple[str, str]]:
        """(key, what it does) for every registered key, the active owner's text first."""
        rows = []
        for key in self._bindings:
            binding = self._resolve(key)
            if binding is not None:
                rows.append((_key_name(key), binding.help))
        return rows

    # -- binding -------------------------------------------------------------------------------
    def _resolve(self, key: str) -> _Binding | None:
        bindings = self._bindings.get(key, [])
        for binding in bindings:
            if binding.owner is self.active_owner:
                return binding
        return bindings[-1] if bindings else None

    def _handler(self, key: str) -> Callable:
        def run(_target=None) -> None:
            self.press(key)
        return run

    def _bind_everywhere(self, keys: list[str]) -> None:
        for key in keys:
            self.viewer.bind_key(key, self._handler(key), overwrite=True)
        for layer in self._owned_layers():
            self._bind_layer(layer, keys)

    def _bind_layer(self, layer, keys: list[str]) -> None:
        for key in keys:
            if layer is self._painting and key not in EDIT_KEYS:
                continue
            layer.bind_key(key, self._handler(key), overwrite=True)

    @staticmethod
    def _unbind(target, key: str) -> None:
        target.bind_key(key, None)

    def _owned_layers(self) -> list:
        return [layer for layer in self.viewer.layers if is_plugin_layer(layer)]

    def _on_inserted(self, event) -> None:
        layer = event.value
        if is_plugin_layer(layer):
            self._bind_layer(layer, list(self._bindings))


def navigation_keys(next_: Callable[[], None],
                    previous: Callable[[], None]) -> dict[str, tuple[Callable[[], None], str]]:
    """``N`` / ``→`` next and ``P`` / ``←`` previous, as a dock registers them."""
    keys = {key: (next_, "next image") for key in ("n", "Right")}
    keys.update({key: (previous, "previous image") for key in ("p", "Left")})
    return keys


def is_plugin_layer(layer) -> bool:
    """A layer the plugin shows (its keys are the plugin's), not one a person added."""
    meta = layer.metadata
    return IMAGE_LAYER_META in meta or REVIEW_META in meta or layer.name == BOX_LAYER


def _key_name(key: str) -> str:
    names = {"Escape": "Esc", "Control-z": "Ctrl+Z", "Control-Shift-z": "Ctrl+Shift+Z",
             "Shift-a": "Shift+A", "Right": "→", "Left": "←", "Shift-/": "?"}
    return names.get(key, key.upper() if len(key) == 1 else key)
