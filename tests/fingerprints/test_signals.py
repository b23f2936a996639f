"""Conformance tests for every registered signal kind, from the examples each kind ships."""

from __future__ import annotations

import numpy as np
import pytest

from fingerprints.phash import PHashFingerprinter
from fingerprints.signals import (FrameView, MediaSignal, SignalKind, frame_views, registry, spaces, stored_views)
from storage.models import HASH_COLUMNS

FRAME_EXAMPLES = [(view, example) for view in frame_views() for example in view.examples]


def test_every_kind_ships_examples_and_describes_itself():
    for name, kind in registry().items():
        assert kind.name == name and kind.description, name
        if isinstance(kind, FrameView):
            assert kind.examples, f"{name} ships no examples"
            assert any(e.expected_hash is not None for e in kind.examples), f"{name} never gives a hash"


@pytest.mark.parametrize("view, example", FRAME_EXAMPLES, ids=[f"{v.name}-{e.label}" for v, e in FRAME_EXAMPLES])
def test_frame_view_examples_give_their_hash_and_its_mirror(view, example):
    views = example.make_views()
    image = view.image(views)
    if example.expected_hash is None:
        assert image is None
        return
    hasher = PHashFingerprinter()
    value, mirrored = hasher.hash_frame_and_mirror(image)
    assert value == example.expected_hash, f"{view.name}: {value:#018x}"
    assert mirrored == hasher.hash_frame(np.ascontiguousarray(image[:, ::-1]))


def test_stored_views_have_a_frames_column_and_every_space_is_indexed():
    columns = [v.column for v in stored_views()]
    assert len(set(columns)) == len(columns)
    assert set(columns) == set(HASH_COLUMNS), "a stored view needs a frames column (model + migration)"
    for space in spaces():
        assert any(v.space == space for v in stored_views()), f"nothing of space {space!r} is stored"


def test_a_kind_name_is_registered_once():
    with pytest.raises(TypeError, match="registered twice"):
        class AnotherPicture(FrameView):  # noqa: F841 (defining it is the test)
            name = "picture"


def test_families_are_not_registered():
    assert not {SignalKind, FrameView, MediaSignal} & {type(k) for k in registry().values()}
