"""The keypoint route on real footage (the chair set) with edits global hashes miss, and on negatives.

Edited copies are made with ffmpeg from the compact chair original; the
negatives are a generated clip and other footage under the same account
template as a stored post.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fingerprints.keypoints import BruteForceKeypointIndex, KeypointCollector, KeypointParams, Keyframes, \
    LshKeypointIndex
from fingerprints.keypoints.signal import _shots, _texture
from fingerprints.signals import kind
from fingerprints.video import fingerprint_video
from monitor.synth.samples import make_edit, make_source_clip

CHAIR = Path(__file__).resolve().parent.parent / "data" / "threatexchange-chair"
ORIGINAL = CHAIR / "chair-orig-22-sd-bar.mp4"
SIGNAL = kind("keypoints")
BANNER = ("drawbox=x=0:y=0:w=iw:h=ih*0.16:color=0x2050d0@1:t=fill,"
          "drawbox=x=iw*0.05:y=ih*0.03:w=iw*0.3:h=ih*0.1:color=white@1:t=fill,"
          "drawbox=x=iw*0.08:y=ih*0.05:w=iw*0.05:h=ih*0.06:color=0xd01030@1:t=fill")

EDITS = {  # name -> (ffmpeg filter, excerpt start, excerpt length, speed)
    "rotate-zoom-speed": ("setpts=PTS/1.5,scale=iw*1.3:ih*1.3,rotate=8*PI/180:c=black,crop=iw/1.3:ih/1.3",
                          4.0, 9.0, 1.5),
    "corner-crop-stretch": ("crop=iw*0.75:ih*0.75:iw*0.25:0,scale=trunc(iw*1.2/2)*2:ih,setsar=1", 8.0, 7.0, 1.0),
    "mirror-crop": ("hflip,crop=iw*0.85:ih*0.8:0:ih*0.2", 12.0, 6.0, 1.0),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The chair original and a generated clip under a banner, stored; the keypoint index over both."""
    tmp = tmp_path_factory.mktemp("kp")
    templated = make_edit(make_source_clip(tmp / "a.mp4", seed=3, duration=8.0), tmp / "a-banner.mp4", BANNER)
    fps = {1: fingerprint_video(ORIGINAL), 2: fingerprint_video(templated)}
    blobs = {k: SIGNAL.to_bytes(fp.signals["keypoints"]) for k, fp in fps.items()}
    index = SIGNAL.make_index()
    for k, blob in blobs.items():
        index.add(k, SIGNAL.from_bytes(blob))
    return tmp, index, blobs, {k: fp.duration for k, fp in fps.items()}


def _match(store, path: Path):
    _, index, blobs, durations = store
    fp = fingerprint_video(path, query=True)
    return SIGNAL.match(fp.signals["keypoints"], index, lambda k: SIGNAL.from_bytes(blobs[k]), durations,
                        fp.duration)


@pytest.mark.parametrize("edit", list(EDITS))
def test_geometry_edits_of_real_footage_are_found_at_their_moment(store, edit):
    tmp = store[0]
    flt, start, length, speed = EDITS[edit]
    path = make_edit(ORIGINAL, tmp / f"{edit}.mp4", flt, start=start, duration=length)
    found = _match(store, path)
    assert [m.media_id for m in found] == [1], found
    m = found[0]
    assert m.routes == ["keypoints"] and m.mirrored == edit.startswith("mirror")
    assert abs(m.speed - speed) <= 0.12 * speed, m.speed
    # the first matched query moment lies where the excerpt says, within a keyframe interval
    seg = m.segments[0]
    assert abs(seg.stored_start - (start + speed * seg.query_start)) <= 1.5, m.segments
    assert 0.3 <= m.query_coverage <= 1.0
    if edit == "rotate-zoom-speed":
        assert abs(abs(m.transform["rotation"]) - 8.0) <= 2.0, m.transform
    if edit == "corner-crop-stretch":  # the right part of the stored picture, squeezed back by 1/1.2
        assert m.transform["stored_x"] >= 0.1 and m.transform["stored_w"] <= 0.9, m.transform
        assert 1.08 <= m.transform["scale_y"] / m.transform["scale_x"] <= 1.35, m.transform


def test_unrelated_footage_and_a_shared_template_match_nothing(store):
    tmp = store[0]
    other = make_edit(make_source_clip(tmp / "b.mp4", seed=5, duration=8.0), tmp / "b-banner.mp4", BANNER)
    assert _match(store, other) == []
    assert _match(store, CHAIR / "test-padded-dimensions.mp4") == []


def test_fingerprint_video_computes_the_media_signals_it_is_asked_for():
    clip = CHAIR / "test-padded-dimensions.mp4"
    assert set(fingerprint_video(clip).signals) == {"keypoints"}
    assert fingerprint_video(clip, media=[]).signals == {}


def test_still_overlay_keypoints_are_dropped():
    """The badge of `_shots(template=...)` stands still over moving shots: none of its keypoints is kept."""
    plain, badged = _collect(_shots(12))[1], _collect(_shots(12, template=5))[1]
    inside = lambda v: ((v.points[:, 0] > 12) & (v.points[:, 0] < 110) & (v.points[:, 1] > 12)  # noqa: E731
                        & (v.points[:, 1] < 50))
    assert inside(plain).sum() > 20  # the shots have keypoints there without the badge
    assert inside(badged).sum() == 0


def test_keyframes_are_bounded_and_bytes_are_checked():
    c = KeypointCollector(KeypointParams(max_keyframes=5))
    for t, picture, cut in _shots(11):
        c.feed(t, picture, cut)
    value = c.finish()
    assert 3 <= len(value) <= 5 and np.all(np.diff(value.times) > 0)
    blob = value.to_bytes()
    assert len(blob) == 12 + 11 * len(value) + 36 * value.keypoint_count
    again = Keyframes.from_bytes(blob)
    assert np.array_equal(again.descriptors, value.descriptors) and again == Keyframes.from_bytes(blob)
    assert np.abs(again.points - value.points).max() <= 1 / 32
    for damaged in (b"", b"XXXX" + blob[4:], blob + b"\0"):
        with pytest.raises(ValueError, match="recompute"):
            Keyframes.from_bytes(damaged)


def _collect(frames, query=False, params=None):
    c = KeypointCollector(params, query=query)
    for t, picture, cut in frames:
        c.feed(t, picture, cut)
    return c, c.finish()


def _values():
    from fingerprints.keypoints.signal import _edited
    return ({1: _collect(_shots(11))[1], 2: _collect(_shots(12))[1], 3: _collect(_shots(13, template=5))[1]},
            _collect(_edited(11))[1])


def test_lsh_index_answers_a_subset_of_the_reference_and_finds_the_same_keyframes():
    stored, query = _values()
    fast, slow = LshKeypointIndex(), BruteForceKeypointIndex()
    for k, v in stored.items():
        fast.add(k, v)
        slow.add(k, v)
    a, b = fast.query(query).as_dict(), slow.query(query).as_dict()
    assert a and all(b.get(key, 0) >= votes for key, votes in a.items())
    # the fast index's votes gather on the copy's keyframes (media 1) more than the reference's do
    share = lambda votes: sum(v for k, v in votes.items() if k[1] == 1) / sum(votes.values())  # noqa: E731
    assert share(a) >= share(b) + 0.05
    # where the reference has a clear answer, the fast index's best keyframe is one the reference rates nearly as high
    for qf in {q for q, _, _ in b}:
        best = max(v for key, v in b.items() if key[0] == qf)
        if best >= 40:
            chosen = max((v, key) for key, v in a.items() if key[0] == qf)[1]
            assert b[chosen] >= 0.7 * best
    fast.remove(1)
    assert {m for _, m, _ in fast.query(query).as_dict()} <= {2, 3} and len(fast) == 2
    copy = LshKeypointIndex.deserialize(fast.serialize())
    assert copy.query(query).as_dict() == fast.query(query).as_dict()
    with pytest.raises(ValueError, match="rebuild"):
        LshKeypointIndex.deserialize(b"not an index")


def test_a_query_finds_its_plain_and_its_mirrored_stored_copies_alike():
    """Query views (here the mirror) are tried for every stored video not aligned yet, not only while
    nothing has matched: one plain copy found must not hide a mirrored copy of the same footage."""
    shots = _shots(11)
    stored = {1: _collect(shots)[1], 2: _collect([(t, np.ascontiguousarray(p[:, ::-1]), c) for t, p, c in shots])[1],
              3: _collect(_shots(12))[1]}
    index = SIGNAL.make_index()
    for k, v in stored.items():
        index.add(k, v)
    query = _collect(shots, query=True)[1]
    found = SIGNAL.match(query, index, stored.__getitem__, {k: 8.0 for k in stored}, 8.0)
    assert sorted(m.media_id for m in found) == [1, 2], found
    assert {m.media_id: m.mirrored for m in found} == {1: False, 2: True}


def test_detection_is_confined_to_what_moves_and_settled_keyframes_hold_no_pictures():
    """A still half beside a moving half: the keypoint budget goes to the moving half (not spent on still
    corners dropped afterwards), and keyframes let their pictures and still maps go once judged."""
    still = _texture(7, (180, 160))
    frames = []
    for t, picture, cut in _shots(11):
        frame = picture.copy()
        frame[:, :160] = still
        frames.append((t, frame, cut))
    _, value = _collect(frames)
    assert np.all(value.points[:, 0] >= 150)  # nothing on the still half (its edge blurs a few pixels)
    counts = np.diff(value.starts)
    # keyframes with a frame a second before them: most of the budget on the moving half
    assert counts[1:].min() >= 0.75 * KeypointParams().keypoints, counts
    c = KeypointCollector()
    for t, picture, cut in frames:
        c.feed(t, picture, cut)
        settled = [f for f in c.frames if f not in c.pending]
        assert all(f.picture is None and f.still == [] for f in settled)


def test_shortlists_go_on_while_they_find_copies():
    """Footage stored many times must not crowd its less-voted edited copy out of the shortlist."""
    from fingerprints.keypoints.match import KeypointMatchParams, match_keyframes
    from fingerprints.keypoints.signal import _edited
    shots = _shots(11)
    stored = {k: _collect(shots)[1] for k in range(1, 5)}  # four plain copies, most votes
    stored[9] = _collect(_edited(11))[1]  # rotated, stretched, cropped: fewer votes
    stored[10] = _collect(_shots(12))[1]  # other footage
    index = SIGNAL.make_index()
    for k, v in stored.items():
        index.add(k, v)
    query = _collect(shots)[1]  # no query views: they would give the crowd's tail shortlists of their own

    def found(params):
        return sorted(m.media_id for m in match_keyframes(
            query, lambda view: index.query(view), stored.__getitem__, {k: 8.0 for k in stored}, 8.0,
            KeypointParams().interval, set(), params))

    assert found(KeypointMatchParams(shortlist=2, shortlist_rounds=1)) == [1, 2]  # one shortlist: the crowd
    assert found(KeypointMatchParams(shortlist=2)) == [1, 2, 3, 4, 9]


def test_footage_stored_many_times_is_found_in_every_copy():
    """Eight copies of one clip verify every query keyframe against eight videos: copies that align are not
    the crowd of a generic picture (a shared intro), and each is reported."""
    shots = _shots(11)
    stored = {k: _collect(shots)[1] for k in range(1, 9)}
    stored[20] = _collect(_shots(12))[1]
    index = SIGNAL.make_index()
    for k, v in stored.items():
        index.add(k, v)
    query = _collect(shots, query=True)[1]
    found = SIGNAL.match(query, index, stored.__getitem__, {k: 8.0 for k in stored}, 8.0)
    assert sorted(m.media_id for m in found) == list(range(1, 9))


def _in_a_window(fore, back, fraction: float, at: tuple[float, float]):
    """`fore`'s frames shrunk into a window of `back`'s (a picture-in-picture), with the window's rectangle."""
    import cv2
    out = []
    for (t, f, cut), (_, b, _) in zip(fore, back):
        h, w = b.shape
        ww, wh = int(w * fraction), int(h * fraction)
        x, y = int((w - ww) * at[0]), int((h - wh) * at[1])
        b = b.copy()
        b[y:y + wh, x:x + ww] = cv2.resize(f, (ww, wh), interpolation=cv2.INTER_AREA)
        out.append((t, b, cut, (x, y, ww, wh)))
    return out


def test_a_stored_window_gets_keypoints_of_its_own_and_its_footage_is_found():
    """Footage in a small picture-in-picture window over other moving footage: the picture's budget goes to the
    surround and the window's footage is not found; enlarged, the window gets a budget of its own at about the
    scale of a full-size copy, and the copy is found at every keyframe."""
    stored = _in_a_window(_shots(14), _shots(15), 0.3, (0.9, 0.8))
    query = _collect(_shots(14), query=True)[1]
    results = {}
    for told in (False, True):
        c = KeypointCollector()
        for t, picture, cut, window in stored:
            c.feed(t, picture, cut, [window] if told else [])
        value = c.finish()
        index = LshKeypointIndex()
        index.add(1, value)
        results[told] = (value, SIGNAL.match(query, index, lambda _: value, {1: 8.0}, 8.0))
    (plain, missed), (windowed, found) = results[False], results[True]
    assert missed == []
    assert [m.media_id for m in found] == [1] and found[0].specific_frames >= 8, found
    assert abs(found[0].speed - 1.0) <= 0.05 and not found[0].mirrored
    # the window's keypoints are in whole-picture coordinates, inside the window
    x, y, w, h = stored[0][3]
    inside = ((windowed.points[:, 0] >= x - 1) & (windowed.points[:, 0] <= x + w + 1)
              & (windowed.points[:, 1] >= y - 1) & (windowed.points[:, 1] <= y + h + 1))
    plain_inside = ((plain.points[:, 0] >= x - 1) & (plain.points[:, 0] <= x + w + 1)
                    & (plain.points[:, 1] >= y - 1) & (plain.points[:, 1] <= y + h + 1))
    assert inside.sum() >= plain_inside.sum() + 8 * len(windowed), (inside.sum(), plain_inside.sum())


def test_a_mirrored_window_in_a_query_is_found_through_the_mirrored_view():
    """A query showing mirrored footage in a small window over other moving footage: the mirrored view gets the
    window's keypoints too (the windows mirrored with it), so the stored footage is found, mirrored."""
    stored = _collect(_shots(14))[1]
    index = LshKeypointIndex()
    index.add(1, stored)
    mirrored = [(t, np.ascontiguousarray(f[:, ::-1]), cut) for t, f, cut in _shots(14)]
    frames = _in_a_window(mirrored, _shots(15), 0.3, (0.1, 0.8))
    found = {}
    for told in (False, True):
        c = KeypointCollector(query=True)
        for t, picture, cut, window in frames:
            c.feed(t, picture, cut, [window] if told else [])
        found[told] = SIGNAL.match(c.finish(), index, lambda _: stored, {1: 8.0}, 8.0)
    assert found[False] == []
    assert [(m.media_id, m.mirrored) for m in found[True]] == [(1, True)] and found[True][0].specific_frames >= 8
