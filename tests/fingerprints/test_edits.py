"""Edits told from matched colour frames: colour, pads, overlays, where a crop or window sits (real ffmpeg clips)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fingerprints.edits import kept_part, picture_edits
from monitor.synth import transforms as T
from monitor.synth.samples import make_edit, make_source_clip

TIMES = (0.5, 1.5, 2.5, 3.5)  # one moment in each of the source's four scenes
BOX = 128  # the size find-earliest cuts frames at (`monitor.jobs.edits.BOX`)
UI = ("color=c=0xe8e8ec:s=640x360:r=15[ui];[ui]drawbox=x=0:y=0:w=iw:h=40:color=0x303848@1:t=fill,"
      "drawbox=x=20:y=300:w=600:h=8:color=0x808080@1:t=fill[bg];[0:v]scale=384:216[v];"
      "[bg][v]overlay=40:60:shortest=1")
EDITS = {
    "grey": "hue=s=0",
    "sepia": "colorchannelmixer=.393:.769:.189:0:.349:.686:.168:0:.272:.534:.131",
    "left": "crop=iw*0.62:ih:0:0",
    "corner": "crop=iw*0.6:ih*0.6:iw*0.4:0,scale=320:180",
    "white-pad": "pad=320:280:0:50:white",
    "blur-pad": ("split[a][b];[a]scale=180:320:force_original_aspect_ratio=increase,crop=180:320,boxblur=12[bg];"
                 "[b]scale=180:-2[fg];[bg][fg]overlay=0:(H-h)/2"),
    "screen": UI,
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("edits")
    out = {"source": make_source_clip(root / "source.mp4", seed=1, duration=4.0),
           "other": make_source_clip(root / "other.mp4", seed=2, duration=4.0, scene_order=(3, 2, 1, 0))}
    for name, graph in EDITS.items():
        out[name] = make_edit(out["source"], root / f"{name}.mp4", graph)
    for name, steps, inputs in (("caption", [T.caption("Shared from a friend")], []),
                                ("logo", [T.logo()], []),
                                ("pip", [T.pip(1, 0.45)], [T.Input(out["other"])])):
        out[name] = T.render(T.Recipe([T.Input(out["source"]), *inputs], steps), root / f"{name}.mp4")
    return out


def frames(path: Path) -> list[np.ndarray]:
    """RGB frames at TIMES, fitted into BOX pixels as find-earliest cuts them."""
    capture = cv2.VideoCapture(str(path))
    out = []
    for t in TIMES:
        capture.set(cv2.CAP_PROP_POS_MSEC, t * 1000)
        ok, frame = capture.read()
        assert ok, (path, t)
        scale = BOX / max(frame.shape[:2])
        frame = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return out


def edits_of(clips, name: str, share: tuple[float, float] = (1.0, 1.0)):
    return picture_edits(frames(clips[name]), frames(clips["source"]), query_share=share)


def test_a_copy_of_the_same_picture_shows_no_edit(clips):
    assert edits_of(clips, "source").words() == []


@pytest.mark.parametrize("name, words", [("grey", "grey (colour removed)"), ("sepia", "sepia")])
def test_colour_edits_are_named(clips, name, words):
    found = edits_of(clips, name)
    assert any(w.startswith(words) for w in found.colour), found
    assert found.overlays == [] and found.kept is None and found.window is None


@pytest.mark.parametrize("name, words", [("chair-22-sd-grey-bar.mp4", "grey (colour removed)"),
                                         ("chair-22-sd-sepia-bar.mp4", "sepia"),
                                         ("chair-orig-22-sd-bar.mp4", None)])
def test_colour_edits_of_real_footage(chair_dir, name, words):
    """The chair set's grey and sepia variants against the original (phone footage with black pillar bars)."""
    share = (0.87, 1.0)  # the bars: what the framing estimate gives for these files
    found = picture_edits(frames(chair_dir / name), frames(chair_dir / "chair-orig-22-sd-bar.mp4"),
                          query_share=share, stored_share=share)
    assert (found.colour[:1] == [words]) if words else found.words() == [], found


def test_contrast_and_brightness_are_named(chair_dir, tmp_path):
    original = chair_dir / "chair-orig-22-sd-bar.mp4"
    share = (0.87, 1.0)
    contrast = make_edit(original, tmp_path / "contrast.mp4", "eq=contrast=1.5", duration=4.0)
    found = picture_edits(frames(contrast), frames(original), query_share=share, stored_share=share)
    assert any(w.startswith("more contrast") for w in found.colour), found
    darker = make_edit(original, tmp_path / "darker.mp4", "eq=brightness=-0.2", duration=4.0)
    found = picture_edits(frames(darker), frames(original), query_share=share, stored_share=share)
    assert any(w.startswith("darker") for w in found.colour), found


def test_where_a_crop_sits_is_named(clips):
    assert edits_of(clips, "left").kept == "left 62% kept"
    assert edits_of(clips, "corner").kept.startswith("top-right corner kept (60% × 60%)")
    assert kept_part(0.2, 0.0, 0.6, 1.0) == "middle 60% kept"


def test_pads_are_named_by_colour(clips):
    assert edits_of(clips, "white-pad", (1.0, 180 / 280)).pad == "white"
    assert edits_of(clips, "blur-pad", (1.0, 102 / 320)).pad == "blurred"
    assert edits_of(clips, "grey").pad is None  # no pads to name


def test_captions_and_logos_are_placed(clips):
    caption = edits_of(clips, "caption")
    assert any(w.startswith("a caption or banner band at the top") for w in caption.overlays), caption
    assert any(w.startswith("a caption or banner band at the bottom") for w in caption.overlays), caption
    logo = edits_of(clips, "logo")
    assert len(logo.overlays) == 1 and "top-right corner" in logo.overlays[0], logo
    # seen from the other side, the stored video has the overlay the copy lacks
    lacking = picture_edits(frames(clips["source"]), frames(clips["logo"]))
    assert lacking.overlays == [] and "top-right corner" in lacking.stored_overlays[0], lacking


def test_picture_in_picture_and_screen_recordings_are_told_apart(clips):
    pip = edits_of(clips, "pip")
    assert pip.window is not None and pip.window.endswith("right") and pip.surround == "other footage", pip
    screen = edits_of(clips, "screen")
    assert screen.window is not None and screen.surround == "a still screen", screen
    assert screen.words()[0].startswith("a screen recording")


def test_missing_or_tiny_frames_say_nothing():
    """Frames that could not be cut (None) or are too small to read are left out; nothing is claimed."""
    tiny = np.zeros((8, 8, 3), np.uint8)
    assert picture_edits([None, tiny], [tiny, None]).words() == []
    assert picture_edits([], []).pairs == 0
