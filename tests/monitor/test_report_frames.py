"""Frames for the HTML report (`monitor.reports.frames`): the right frames, cut once, many per process."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from monitor.reports import frames as F
from monitor.reports.frames import Frame, cut_frames, keyframes, since_keyframe


def _probe_keyframes(path: Path) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time,flags", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return sorted(float(line.split(",")[0]) for line in out.splitlines() if ",K" in line)


def _one_frame(path: Path, at: float) -> bytes:
    """The frame as a single ffmpeg process seeking once would cut it, with the same filters."""
    fit = (f"scale=iw*sar:ih,setsar=1,scale={F.THUMB_BOX}:{F.THUMB_BOX}:force_original_aspect_ratio=decrease"
           ":force_divisible_by=2")
    return subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-ss", f"{at:.3f}", "-i",
                           f"file:{path}", "-frames:v", "1", "-vf", fit, "-c:v", "mjpeg", "-q:v", "5", "-f", "image2pipe",
                           "pipe:1"], capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def clips(sample_clips, tmp_path_factory) -> dict[str, Path]:
    """The source (scene cuts make keyframes every 3 s) and a copy re-encoded with a keyframe every 10 frames."""
    dense = tmp_path_factory.mktemp("frames") / "dense.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(sample_clips.source), "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", str(dense)], check=True)
    return {"source": sample_clips.source, "dense": dense}


def test_keyframes_are_those_the_container_marks(clips, tmp_path):
    junk = tmp_path / "notes.mp4"
    junk.write_text("not a video\n" * 100)
    found = keyframes([clips["source"], clips["dense"], junk, tmp_path / "missing.mp4"])
    assert set(found) == {clips["source"], clips["dense"]}
    for name, path in clips.items():
        assert found[path] == pytest.approx(_probe_keyframes(path), abs=0.002), name
    assert len(found[clips["dense"]]) > len(found[clips["source"]]) >= 2
    assert since_keyframe(found[clips["dense"]], found[clips["dense"]][3] + 0.2) == pytest.approx(0.2, abs=1e-6)
    assert since_keyframe(None, 5.0) == 0.0


@pytest.mark.parametrize("seed", [3, 17])
def test_batched_frames_are_the_frames_one_seek_each_would_give(clips, tmp_path, seed):
    rng = random.Random(seed)
    wanted = [Frame.of(path, rng.uniform(0, 11.5)) for path in clips.values() for _ in range(5)]
    wanted += [wanted[0], wanted[3]]  # shown twice, cut once
    past_end = Frame.of(clips["dense"], 60.0)
    missing = Frame.of(tmp_path / "gone.mp4", 1.0)
    keys = keyframes(clips.values())
    for given in (keys, None):  # with keyframe times, and by distance alone
        cut = cut_frames([*wanted, past_end, missing], given)
        assert set(cut) == set(wanted)
        for f in set(wanted):
            assert cut[f] == _one_frame(f.path, f.at), (f, given is None)


def test_frames_of_one_keyframe_interval_share_a_seek():
    keys = [0.0, 2.0, 4.0]
    path = Path("/x.mp4")
    runs = F._runs([Frame.of(path, t) for t in (0.5, 1.9, 2.0, 3.5, 4.2, 2.5)], keys)
    assert [[f.at for f in run] for run in runs] == [[0.5, 1.9], [2.0, 2.5, 3.5], [4.2]]
    runs = F._runs([Frame.of(path, t) for t in (0.5, 3.0, 9.0)], None)
    assert [[f.at for f in run] for run in runs] == [[0.5, 3.0], [9.0]]
