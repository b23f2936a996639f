"""Unit tests of the pure pieces: hashes, crop detection, index, settings, decode errors."""

from __future__ import annotations

import subprocess

import cv2
import imagehash
import numpy as np
import pytest
from PIL import Image

from fingerprints.align import MatchParams, _line, speed_grid
from fingerprints.decode import VideoDecodeError, stream_info
from fingerprints.index import BruteForceIndex
from fingerprints.model import FingerprintSettings
from fingerprints.normalize import (detect_active_area, detect_changing_region, detect_inner_window, detect_split, mask_at, moving_parts, static_overlay_mask,
                                    still_background)
from fingerprints.phash import PHashFingerprinter, bits_to_int, hamming
from fingerprints.video import fingerprint_video

RNG = np.random.default_rng(7)


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("seed", range(5))
def test_phash_is_imagehash_phash_and_mirror_is_the_flipped_frame(seed):
    frame = _texture(120 + seed * 17, 200 + seed * 31, seed)
    hasher = PHashFingerprinter()
    h, m = hasher.hash_frame_and_mirror(frame)
    assert h == hasher.hash_frame(frame) == bits_to_int(imagehash.phash(Image.fromarray(frame)).hash)
    flipped = bits_to_int(imagehash.phash(Image.fromarray(np.ascontiguousarray(frame[:, ::-1]))).hash)
    assert hamming(m, flipped) <= 2  # equal but for rounding in the resize
    assert hamming(h, m) > 10  # an asymmetric picture: its mirror is a different hash


def test_black_bars_are_cropped():
    content = [_texture(180, 320, s) for s in range(6)]
    boxed = [cv2.copyMakeBorder(c, 50, 50, 0, 0, cv2.BORDER_CONSTANT, value=16) for c in content]
    box = detect_active_area(boxed)
    assert (box.y, box.height) == (50, 180) and (box.x, box.width) == (0, 320)


def test_blurred_pad_is_cropped_to_the_sharp_footage():
    frames = []
    for s in range(6):
        fg = _texture(100, 180, s)
        bg = cv2.GaussianBlur(cv2.resize(fg, (180, 320)), (0, 0), 12)
        bg[110:210] = fg
        frames.append(bg)
    box = detect_active_area(frames)
    assert abs(box.y - 110) <= 3 and abs(box.height - 100) <= 6
    assert box.width == 180


def test_blurred_pad_with_a_title_band_is_cropped_after_a_lossy_reencode():
    # a 9:16 template re-encoded at low quality: compression noise on the pad, softer footage, and a
    # title band whose lettering is sharper than anything else (but only a few rows of the pad)
    rng = np.random.default_rng(3)
    frames = []
    for s in range(6):
        fg = cv2.GaussianBlur(_texture(100, 180, s), (0, 0), 0.7)
        bg = cv2.GaussianBlur(cv2.resize(fg, (180, 320)), (0, 0), 12).astype(np.float32)
        bg += rng.normal(0, 1.0, bg.shape)
        bg[110:210] = fg
        bg[:36] = 32
        bg[12:24, 10:120] = np.where(rng.random((12, 110)) < 0.5, 32, 235)  # the lettering
        frames.append(np.clip(bg, 0, 255).astype(np.uint8))
    box = detect_active_area(frames)
    assert abs(box.y - 110) <= 3 and abs(box.height - 100) <= 6
    assert box.width == 180


def test_footage_fading_into_smooth_sides_is_not_taken_for_a_blurred_pad():
    # detail in the middle that thins out towards smooth sides (a sky, a gradient, dark corners):
    # the edge energy ramps up over many columns instead of stepping up at a pad's edge
    columns = np.linspace(-1.0, 1.0, 320)
    detail = np.clip(1.4 - 2.2 * np.abs(columns), 0.0, 1.0) ** 2
    frames = []
    for s in range(6):
        texture = _texture(180, 320, s).astype(np.float32)
        gradient = np.tile(np.linspace(60, 200, 320, dtype=np.float32), (180, 1))
        frames.append(np.clip(gradient + (texture - 128) * detail, 0, 255).astype(np.uint8))
    assert detect_active_area(frames).is_full


def test_still_background_and_what_moves_in_front_of_it():
    rng = np.random.default_rng(5)
    scene = _texture(136, 320, 1)
    frames = []
    for k in range(12):
        f = np.clip(scene.astype(np.int16) + rng.integers(-4, 5, scene.shape), 0, 255).astype(np.uint8)
        f[70:92, 10 + 9 * k:20 + 9 * k] = 40  # a small figure walking right
        frames.append(f)
    background = still_background(frames)
    assert background is not None
    moved = [moving_parts(f, background) for f in frames]
    assert all(m is not None for m in moved)
    assert int(np.argmax(moved[3].max(axis=0))) in range(37, 48)  # where the figure is in that frame
    assert moving_parts(np.clip(scene.astype(np.int16) + 2, 0, 255).astype(np.uint8), background) is None
    panning = [np.roll(scene, 7 * k, axis=1) for k in range(12)]  # a moving camera has no still background
    assert still_background(panning) is None
    assert still_background(frames[:4]) is None  # too few frames to tell


def test_dark_footage_is_not_cropped_to_nothing():
    frames = [np.full((180, 320), 10, np.uint8) for _ in range(4)]
    assert detect_active_area(frames).is_full


def test_brute_force_index_agrees_with_a_python_reference():
    stored = RNG.integers(0, 2**63, 500, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    media = np.repeat(np.arange(5), 100)
    times = np.tile(np.arange(100) * 0.25, 5)
    index = BruteForceIndex.build(media, times, stored)
    queries = stored[[3, 150, 499]] ^ np.uint64(0b1011)  # 3 bits away
    queries = np.concatenate([queries, RNG.integers(0, 2**63, 20, dtype=np.int64).astype(np.uint64)])
    hits = index.query(queries, max_distance=12)
    got = sorted(zip(hits.query_positions.tolist(), hits.media_ids.tolist(), hits.distances.tolist()))
    expected = sorted((qi, int(media[si]), hamming(int(q), int(stored[si])))
                      for qi, q in enumerate(queries) for si in range(len(stored))
                      if hamming(int(q), int(stored[si])) <= 12)
    assert got == expected
    assert {(0, 0, 3), (1, 1, 3), (2, 4, 3)} <= set(got)


def test_index_add_remove_and_serialize_round_trip():
    index = BruteForceIndex()
    index.add(1, np.array([0.0, 0.5]), np.array([2**64 - 1, 5], dtype=np.uint64))
    index.add(2, np.array([0.0]), np.array([5], dtype=np.uint64))
    assert len(index) == 3
    copy = BruteForceIndex.deserialize(index.serialize())
    assert copy.query(np.array([2**64 - 1], dtype=np.uint64), 0).media_ids.tolist() == [1]
    index.remove(1)
    assert index.media_ids() == {2}


def test_speed_grid_contains_real_time_and_the_limits():
    grid = speed_grid(MatchParams())
    assert 1.0 in grid
    assert grid.min() >= 0.5 - 1e-9 and grid.max() <= 2.0 + 1e-9


def test_settings_key_is_stable_and_changes_with_any_parameter():
    a, b = FingerprintSettings(), FingerprintSettings()
    assert a.key() == b.key() and a.key().startswith(f"phash64-v{a.version}-")
    assert FingerprintSettings(floor_interval=0.5).key() != a.key()


@pytest.mark.parametrize("kind", ["zero-byte", "truncated", "corrupt", "not-video"])
def test_bad_files_raise_a_one_line_error(bad_files, kind):
    with pytest.raises(VideoDecodeError) as err:
        fingerprint_video(bad_files[kind])
    message = str(err.value)
    assert "\n" not in message and message
    assert str(bad_files[kind]) not in message


def test_stream_info_reads_display_size(sample_clips):
    info = stream_info(sample_clips.edits["blurpad_9x16"])
    assert (info.width, info.height) == (180, 320)
    assert info.duration == pytest.approx(12.0, abs=0.2)


def test_flat_frames_are_skipped(tmp_path):
    import subprocess
    path = tmp_path / "black.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=black:size=160x120:rate=10",
                    "-t", "2", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path)], check=True)
    fp = fingerprint_video(path)
    assert fp.frames == [] and fp.frames_skipped_flat > 0


def _moving(n: int, h: int, w: int, seed: int) -> list[np.ndarray]:
    """n frames of texture that changes from frame to frame."""
    return [_texture(h, w, seed * 100 + k) for k in range(n)]


def test_picture_in_picture_window_is_found():
    frames = _moving(8, 180, 320, 1)
    inside = _moving(8, 100, 150, 2)
    for frame, window in zip(frames, inside):
        frame[40:140, 160:310] = window
    box = detect_inner_window(frames)
    assert box is not None
    assert abs(box.x - 160) <= 3 and abs(box.y - 40) <= 3
    assert abs(box.width - 150) <= 4 and abs(box.height - 100) <= 4


def test_no_window_in_plain_footage_or_behind_full_width_bands():
    assert detect_inner_window(_moving(8, 180, 320, 3)) is None
    banded = _moving(8, 180, 320, 4)
    for frame in banded:
        frame[:30] = 40  # a banner across the whole width is framing, not a window
    assert detect_inner_window(banded) is None


def _alike(frames: list[np.ndarray], mean: float = 128.0, spread: float = 30.0) -> list[np.ndarray]:
    """The frames with one brightness and contrast (over the whole shot), so no edge tells two of them apart."""
    stack = np.stack(frames).astype(np.float32)
    return list(np.clip((stack - stack.mean()) / stack.std() * spread + mean, 0, 255).astype(np.uint8))


def test_split_screen_sides_are_told_apart_by_time_where_no_edge_shows():
    """Two videos stacked 40/60 with the same brightness and contrast: no border in the picture, but the changes on
    either side of it are unrelated; the larger side comes first."""
    top, bottom = _alike(_moving(12, 72, 320, 11)), _alike(_moving(12, 108, 320, 12))
    frames = [np.vstack([a, b]) for a, b in zip(top, bottom)]
    assert detect_inner_window(frames) is None  # no window, and the median gradient shows no border
    split = detect_split(frames)
    assert split is not None
    larger, smaller = split
    assert (larger.x, larger.width, smaller.x, smaller.width) == (0, 320, 0, 320)
    assert abs(larger.y - 72) <= 2 and abs(larger.height - 108) <= 2 and smaller.y == 0 and abs(smaller.height - 72) <= 2
    side_by_side = [np.hstack([a, b]) for a, b in zip(_alike(_moving(12, 180, 200, 13)), _alike(_moving(12, 180, 120, 14)))]
    larger, smaller = detect_split(side_by_side)
    assert larger.x == 0 and abs(larger.width - 200) <= 2 and abs(smaller.x - 200) <= 2


def test_a_screen_recordings_player_is_the_region_that_changes_on_its_own():
    """A still interface (title bar, buttons, caption) around a player whose picture changes; a cursor wanders."""
    frames = []
    video = _moving(12, 90, 160, 15)
    for k, picture in enumerate(video):
        frame = np.full((200, 320), 235, dtype=np.uint8)
        frame[:20] = 60  # title bar
        frame[170:180, 40:60] = 30  # a button
        frame[40:130, 100:260] = picture
        frame[150 + k % 3:160 + k % 3, 20 + 9 * k:29 + 9 * k] = 255 - 200 * (k % 2)  # the cursor
        frames.append(frame)
    box = detect_changing_region(frames)
    assert box is not None
    assert abs(box.x - 100) <= 2 and abs(box.y - 40) <= 2 and abs(box.width - 160) <= 3 and abs(box.height - 90) <= 3
    assert detect_split(frames) is None


def test_footage_whose_pixels_never_change_together_has_no_split_or_region():
    """Cellular patterns and noise: neighbours' changes are unrelated everywhere, so no line is a border; plain
    footage is one region, too big to be a window."""
    rng = np.random.default_rng(16)
    cells = [np.repeat(np.repeat(rng.integers(0, 2, (45, 80), dtype=np.uint8) * 255, 4, axis=0), 4, axis=1)
             for _ in range(12)]
    assert detect_split(cells) is None and detect_changing_region(cells) is None
    plain = _moving(12, 180, 320, 17)
    assert detect_split(plain) is None and detect_changing_region(plain) is None
    for frame in plain:
        frame[150:] = 220  # a still caption band: the picture less a band is no window
    assert detect_changing_region(plain) is None


@pytest.mark.parametrize("shape", [(1, 64), (64, 1), (4, 4), (15, 320)])
def test_frames_too_thin_for_borders_have_no_window(shape):
    """A hostile 2x600 video comes out of decoding one pixel high: no window, and no crash in the filters."""
    frames = [np.random.default_rng(k).integers(0, 255, shape, dtype=np.uint8) for k in range(12)]
    assert detect_split(frames) is None and detect_changing_region(frames) is None


def test_small_windows_are_looked_up_but_not_stored():
    """A window under 15% of the picture may be an animated sticker: every fingerprint keeps it (a query, or an
    ingest matching a new post, looks it up), but it is not stored, nor what is around it."""
    from fingerprints.model import FrameHash
    from fingerprints.signals import STORED_WINDOW_AREA, kind
    frames = [FrameHash(index=k, timestamp=k * 0.25, hashes={"picture": 1 + k, "window": 10 + k, "surround": 20 + k},
                        window_share=share) for k, share in enumerate((0.08, STORED_WINDOW_AREA, 0.4))]
    for name in ("window", "surround"):
        view = kind(name)
        assert view.stored and not view.against_own
        assert view.hashes_of(frames)[0].tolist() == [0, 1, 2]
        assert view.hashes_of(frames, stored=True)[0].tolist() == [1, 2]
    assert kind("picture").hashes_of(frames, stored=True)[0].tolist() == [0, 1, 2]


def test_still_overlay_is_masked_only_over_moving_footage():
    frames = _moving(8, 180, 320, 5)
    for frame in frames:
        frame[:25] = 200  # a banner
        frame[150:170, 250:310] = 90  # a badge
    cells = static_overlay_mask(frames)
    assert cells is not None
    mask = mask_at(cells, frames[0].shape)
    assert mask[:20].mean() > 0.9 and mask[155:165, 260:300].mean() > 0.9
    assert mask[50:140].mean() < 0.05
    still_camera = [_texture(180, 320, 6)] * 8
    assert static_overlay_mask(still_camera) is None
    # a slow shot keeps the overlay found in the shot before, while it stays still
    base = (_texture(180, 320, 7) * 0.2 + 100).astype(np.uint8)  # low contrast, panning a pixel a frame
    slow = [np.roll(base, k, axis=1) for k in range(8)]
    for frame in slow:
        frame[:25] = 200
        frame[150:170, 250:310] = 90
    assert static_overlay_mask(slow) is None
    assert static_overlay_mask(slow, previous=cells) is cells


def test_a_single_frame_video_is_fingerprinted(tmp_path):
    """ffmpeg's fps filter emits nothing for a one-frame clip; the decoder then passes the last frame."""
    one = tmp_path / "one.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "1",
                    "-pix_fmt", "yuv420p", str(one)], check=True)
    fp = fingerprint_video(one)
    assert fp.frames_decoded == 1 and len(fp.frames) == 1


def test_line_fit_finds_a_small_speed_change_the_vote_grid_cannot():
    """4 s of a 1.1x copy: real time holds every frame within the tolerance, the fitted line is 1.1."""
    rng = np.random.default_rng(3)
    q = np.arange(0, 4.0, 0.125)
    s = 5.0 + 1.1 * q + rng.normal(0, 0.03, len(q))
    weights = np.ones(len(q))
    speed, offset = _line(q, s, weights, np.arange(len(q)), MatchParams())
    assert speed == pytest.approx(1.1, abs=0.02) and offset == pytest.approx(5.0, abs=0.1)
    # the same timing noise without a speed change stays real time, its offset the median one
    speed, offset = _line(q, 5.0 + q + rng.normal(0, 0.03, len(q)), weights, np.arange(len(q)), MatchParams())
    assert (speed, round(offset, 1)) == (1.0, 5.0)


def test_line_fit_prefers_the_best_hash_per_query_frame():
    """Each query frame also hits a neighbouring stored frame a little worse: the fit follows the best hits."""
    q = np.repeat(np.arange(0, 6.0, 0.25), 2)
    positions = np.repeat(np.arange(24), 2)
    s = 0.5 * q + 1.0 + np.tile([0.0, 0.3], 24)
    weights = np.tile([0.9, 0.3], 24)
    speed, offset = _line(q, s, weights, positions, MatchParams())
    assert speed == pytest.approx(0.5, abs=0.01) and offset == pytest.approx(1.0, abs=0.05)


def test_the_weighted_line_is_numpys_polyfit_in_closed_form():
    from fingerprints.align import _weighted_line

    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(3, 60))
        x = np.sort(rng.uniform(0, 30, n))
        y = rng.uniform(0.5, 2) * x + rng.uniform(-5, 5) + rng.normal(0, 0.1, n)
        w = rng.uniform(0.05, 1, n)
        (slope, intercept), cov = np.polyfit(x, y, 1, w=np.sqrt(w), cov="unscaled")
        assert _weighted_line(x, y, w) == pytest.approx((slope, intercept, cov[0, 0]), rel=1e-9, abs=1e-9)
    assert _weighted_line(np.ones(4), np.arange(4.0), np.ones(4)) is None  # no spread in time
    assert _weighted_line(np.arange(4.0), np.arange(4.0), np.zeros(4)) is None  # no weight
