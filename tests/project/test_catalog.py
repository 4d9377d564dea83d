"""Catalog: classes, items and image-level tags."""

from __future__ import annotations

import pytest
from project_helpers import add_fake_items

from napari_weaksam.project import ProjectError
from napari_weaksam.project.catalog import CLASS_COLORS


def test_classes_get_increasing_label_values_and_colors(project):
    tumour = project.catalog.add_class("tumour")
    polyp = project.catalog.add_class("polyp", color="#123456")
    assert (tumour.label_value, polyp.label_value) == (1, 2)
    assert tumour.color == CLASS_COLORS[0]
    assert polyp.color == "#123456"
    assert [c.name for c in project.catalog.classes()] == ["tumour", "polyp"]


def test_class_names_are_unique_ignoring_case(project):
    project.catalog.add_class("Tumour")
    with pytest.raises(ProjectError, match="already exists"):
        project.catalog.add_class("tumour")
    assert project.catalog.class_by_name("TUMOUR").name == "Tumour"


@pytest.mark.parametrize("name, message", [("  ", "cannot be empty"), ("12", "not a number")])
def test_bad_class_names_are_refused(project, name, message):
    with pytest.raises(ProjectError, match=message):
        project.catalog.add_class(name)
    assert project.catalog.classes() == []


def test_ensure_class_reuses_an_existing_class(project):
    first = project.catalog.ensure_class("tumour")
    assert project.catalog.ensure_class("tumour") == first
    assert len(project.catalog.classes()) == 1


def test_rename_class_keeps_id_and_refuses_a_clash(project):
    a = project.catalog.add_class("a")
    project.catalog.add_class("b")
    assert project.catalog.rename_class(a.id, "lesion").name == "lesion"
    with pytest.raises(ProjectError, match="already exists"):
        project.catalog.rename_class(a.id, "B")


def test_items_are_ordered_by_display_index(project):
    ids = add_fake_items(project, 4)
    items = project.catalog.items()
    assert [i.id for i in items] == ids
    assert [i.display_index for i in items] == [0, 1, 2, 3]
    assert all(i.is_slice and not i.tagged for i in items)
    assert project.catalog.count_items() == 4
    assert project.catalog.item_ids() == ids                  # the same order, ids only
    assert project.catalog.item_ids(min_channels=3) == []     # grey slices: no colour items


def test_toggle_tag_flips_presence(project):
    (item,) = add_fake_items(project, 1)
    cls = project.catalog.add_class("tumour")
    assert project.catalog.toggle_tag(item, cls.id) is True
    assert project.catalog.tags(item) == {cls.id}
    assert project.catalog.toggle_tag(item, cls.id) is False
    assert project.catalog.tags(item) == set()
    assert project.catalog.item(item).tagged  # tagged as "no finding"


def test_empty_tag_set_means_no_finding_and_clear_means_untagged(project):
    a, b, c = add_fake_items(project, 3)
    cls = project.catalog.add_class("tumour")
    project.catalog.set_tags(a, {cls.id})
    project.catalog.set_tags(b, set())
    assert project.catalog.all_tags() == {a: {cls.id}, b: set()}
    counts = project.catalog.tag_counts()
    assert counts == {"items": 3, "tagged": 2, "no_finding": 1, "tumour": 1}
    project.catalog.clear_tags(a)
    assert not project.catalog.item(a).tagged
    assert project.catalog.all_tags() == {b: set()}
    assert not project.catalog.item(c).tagged


def test_set_many_tags_replaces_previous_tags(project):
    a, b = add_fake_items(project, 2)
    x = project.catalog.add_class("x")
    y = project.catalog.add_class("y")
    project.catalog.set_tags(a, {x.id})
    project.catalog.set_many_tags({a: {y.id}, b: {x.id, y.id}})
    assert project.catalog.all_tags() == {a: {y.id}, b: {x.id, y.id}}


def test_unknown_ids_raise_project_error(project):
    with pytest.raises(ProjectError, match="no item with id 99"):
        project.catalog.item(99)
    with pytest.raises(ProjectError, match="no source with id 99"):
        project.catalog.source(99)
    with pytest.raises(ProjectError, match="no class with id 99"):
        project.catalog.class_(99)


def test_failed_transaction_leaves_nothing_behind(project):
    (item,) = add_fake_items(project, 1)
    with pytest.raises(RuntimeError), project.db.transaction() as conn:
        conn.execute("INSERT INTO classes (name, label_value, color, created_at)"
                     " VALUES ('x', 1, '#000', 'now')")
        raise RuntimeError("boom")
    assert project.catalog.classes() == []
    cls = project.catalog.add_class("x")  # the connection is usable again
    project.catalog.set_tags(item, {cls.id})
    assert project.catalog.tags(item) == {cls.id}
