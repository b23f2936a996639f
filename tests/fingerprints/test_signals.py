"""Conformance tests for every registered signal kind, from the examples each kind ships."""

from __future__ import annotations

import numpy as np
import pytest

from fingerprints.phash import PHashFingerprinter
from fingerprints.model import FingerprintSettings
from fingerprints.signals import (FrameView, MediaSignal, SignalKind, frame_views, media_signals, registry, spaces,
                                  stored_views)
from storage.models import HASH_COLUMNS

FRAME_EXAMPLES = [(view, example) for view in frame_views() for example in view.examples]


def test_every_kind_ships_examples_and_describes_itself():
    for name, kind in registry().items():
        assert kind.name == name and kind.description, name
        if isinstance(kind, FrameView):
            assert kind.examples, f"{name} ships no examples"
            assert any(e.expected_hash is not None for e in kind.examples), f"{name} never gives a hash"
        if isinstance(kind, MediaSignal):
            assert any(e.query and e.matches for e in kind.examples), f"{name} ships no example that matches"
            assert any(e.query and not e.matches for e in kind.examples), f"{name} ships no example that must not"


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


# --- media signals: values, bytes, an index, matches --------------------------------------------------------


def _collect(kind: MediaSignal, example):
    collector = kind.collector(FingerprintSettings(), query=example.query)
    for t, picture, cut in example.make_frames():
        collector.feed(t, picture, cut)
    return collector.finish()


@pytest.fixture(scope="module", params=media_signals(), ids=lambda k: k.name)
def media_kind(request):
    kind = request.param
    return kind, {e.label: _collect(kind, e) for e in kind.examples}


def test_media_examples_give_their_values_and_survive_bytes(media_kind):
    kind, values = media_kind
    for example in kind.examples:
        value = values[example.label]
        summary = kind.summary(value)
        for key, (low, high) in example.expected.items():
            assert low <= summary[key] <= high, f"{kind.name} {example.label}: {key}={summary[key]}"
        blob = kind.to_bytes(value)
        assert kind.to_bytes(kind.from_bytes(blob)) == blob
        with pytest.raises(ValueError, match="recompute"):
            kind.from_bytes(blob[:-1])


def test_media_examples_match_what_they_show_and_nothing_else(media_kind):
    kind, values = media_kind
    stored = {k: e.label for k, e in enumerate(kind.examples, 1) if not e.query}
    blobs = {k: kind.to_bytes(values[label]) for k, label in stored.items()}
    index = kind.make_index()
    for k, blob in blobs.items():
        index.add(k, kind.from_bytes(blob))
    assert len(index) == len(stored)
    copy = kind.deserialize_index(index.serialize())
    assert len(copy) == len(stored)
    load = lambda k: kind.from_bytes(blobs[k])  # noqa: E731
    durations = {k: 8.0 for k in stored}
    for example in (e for e in kind.examples if e.query):
        query = values[example.label]
        matches = kind.match(query, index, load, durations, 8.0)
        found = [stored[m.media_id] for m in matches]
        assert sorted(found) == sorted(example.matches), f"{kind.name} {example.label}: found {found}"
        assert [m.media_id for m in kind.match(query, copy, load, durations, 8.0)] == [m.media_id for m in matches]
        for m in matches:
            assert m.routes == [kind.name] and m.segments and 0 < m.query_coverage <= 1
        if matches:
            left = kind.match(query, index, load, durations, 8.0, exclude={matches[0].media_id})
            assert matches[0].media_id not in {m.media_id for m in left}
    for k in stored:
        index.remove(k)
    assert len(index) == 0
    for example in (e for e in kind.examples if e.query):
        assert kind.match(values[example.label], index, load, durations, 8.0) == []
