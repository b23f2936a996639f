"""Small generated test videos, made once per test session with ffmpeg.

`sample_clips` holds a source clip, its re-upload edits and unrelated clips;
`bad_files` holds files that must be refused.  Nothing here is committed media.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from monitor.synth.samples import EDITS, make_edit, make_source_clip

# A compact copy of the ThreatExchange chair set (BSD licence; see its README for how it was re-encoded).
CHAIR_DIR = Path(__file__).resolve().parent / "data" / "threatexchange-chair"
EXCERPT_START = 3.3


T = TypeVar("T")


def made_once(tmp_path_factory, name: str, make: Callable[[Path], T]) -> T:
    """`make(directory)`, once per test run: pytest-xdist's workers share what the first of them made.

    Each worker has a base temporary directory of its own; in their parent, a
    directory named by the run's id is this run's alone.  The first worker to
    take the lock makes the files there and pickles what `make` returned
    (paths); the others wait for the lock and read it.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return make(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent / f"shared-{os.environ['PYTEST_XDIST_TESTRUNUID']}"
    shared.mkdir(exist_ok=True)
    root, made = shared / name, shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if made.exists():
            return pickle.loads(made.read_bytes())
        shutil.rmtree(root, ignore_errors=True)  # what a worker that failed half-way left
        root.mkdir()
        result = make(root)
        made.write_bytes(pickle.dumps(result))
        return result


@dataclass
class SampleClips:
    source: Path
    edits: dict[str, Path] = field(default_factory=dict)
    unrelated: list[Path] = field(default_factory=list)


@pytest.fixture(scope="session")
def sample_clips(tmp_path_factory) -> SampleClips:
    return made_once(tmp_path_factory, "clips", _make_sample_clips)


def _make_sample_clips(root: Path) -> SampleClips:
    clips = SampleClips(source=make_source_clip(root / "source.mp4", seed=1))
    for name, video_filter in EDITS.items():
        clips.edits[name] = make_edit(clips.source, root / f"{name}.mp4", video_filter)
    clips.edits["excerpt_6s"] = make_edit(clips.source, root / "excerpt_6s.mp4", start=EXCERPT_START, duration=6.0)
    orders = [(3, 2, 1, 0), (1, 3, 0, 2), (2, 0, 3, 1)]
    clips.unrelated = [make_source_clip(root / f"unrelated-{seed}.mp4", seed=seed, scene_order=order)
                       for seed, order in zip((2, 3, 5), orders)]
    return clips


# A still camera: one picture, sensor noise, a small figure crossing it at 18 px/s.
STILL_SCENE = ("mandelbrot=size=320x136:rate=15:start_x=-0.16:start_y=1.0405:start_scale=0.02:end_scale=0.02"
               ":inner=period:maxiter=300,trim=end_frame=1,loop=loop=-1:size=1,setpts=N/15/TB,fps=15,"
               "trim=duration=12[still];color=c=0x803020:s=10x22:r=15[fig];"
               "[still][fig]overlay=x='mod(t*18,W)':y=H*0.55:shortest=1,noise=alls=6:allf=t")
# An account template over the picture: a banner at the top, a caption box at the bottom.
BANNER = ("drawbox=x=0:y=0:w=iw:h=ih*0.14:color=0x3060a0@1:t=fill,"
          "drawbox=x=iw*0.04:y=ih*0.03:w=iw*0.3:h=ih*0.08:color=white@1:t=fill,"
          "drawbox=x=0:y=ih*0.82:w=iw:h=ih*0.14:color=black@0.7:t=fill,"
          "drawbox=x=iw*0.05:y=ih*0.86:w=iw*0.5:h=ih*0.05:color=yellow@1:t=fill")


@pytest.fixture(scope="session")
def still_camera_clips(tmp_path_factory) -> dict[str, Path]:
    """Two takes (0-5 s, 6.5-11.5 s) of one still scene, B under a banner, B mirrored, 3 s of A."""
    return made_once(tmp_path_factory, "still", _make_still_camera_clips)


def _make_still_camera_clips(root: Path) -> dict[str, Path]:
    scene = root / "scene.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", STILL_SCENE, "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", str(scene)], check=True)
    clips = {"A": make_edit(scene, root / "a.mp4", start=0.0, duration=5.0),
             "B": make_edit(scene, root / "b.mp4", start=6.5, duration=5.0)}
    clips["B-banner"] = make_edit(clips["B"], root / "b-banner.mp4", BANNER)
    clips["B-mirror"] = make_edit(clips["B"], root / "b-mirror.mp4", "hflip")
    clips["A-excerpt"] = make_edit(clips["A"], root / "a-excerpt.mp4", start=1.0, duration=3.0)
    return clips


TINY_PATTERNS = ("testsrc2", "mandelbrot", "life", "cellauto", "testsrc")


@pytest.fixture(scope="session")
def tiny_clips(tmp_path_factory) -> dict[str, Path]:
    """Five visibly different 2 s, 160x120 H.264 clips, for tests where content hardly matters."""
    return made_once(tmp_path_factory, "tiny", _make_tiny_clips)


def _make_tiny_clips(root: Path) -> dict[str, Path]:
    clips = {}
    for pattern in TINY_PATTERNS:
        clips[pattern] = root / f"{pattern}.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"{pattern}=size=160x120:rate=10", "-t", "2",
             "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", str(clips[pattern])],
            check=True)
    return clips


@pytest.fixture(scope="session")
def chair_dir() -> Path:
    return CHAIR_DIR


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory, sample_clips) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    data = sample_clips.source.read_bytes()
    files = {
        "zero-byte": root / "empty.mp4",
        "truncated": root / "truncated.mp4",
        "corrupt": root / "corrupt.mp4",
        "not-video": root / "notes.mp4",
    }
    files["zero-byte"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 3])
    corrupt = bytearray(data)
    for i in range(2000, len(corrupt), 97):
        corrupt[i] ^= 0x5A
    files["corrupt"].write_bytes(bytes(corrupt))
    files["not-video"].write_text("these are my notes, not a video\n" * 50)
    return files


@pytest.fixture(scope="session")
def footage_clips(tmp_path_factory) -> dict[str, Path]:
    """One 4 s footage and two re-uploads of it (mirrored, cropped), and an unrelated 4 s clip: 160x120."""
    return made_once(tmp_path_factory, "footage", _make_footage_clips)


def _make_footage_clips(root: Path) -> dict[str, Path]:
    clips = {}
    for name, pattern in (("original", "testsrc2=size=160x120:rate=10"),
                          ("unrelated", "mandelbrot=size=160x120:rate=10")):
        clips[name] = root / f"{name}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", pattern, "-t", "4", "-pix_fmt", "yuv420p",
                        "-c:v", "libx264", "-preset", "ultrafast", str(clips[name])], check=True)
    for name, video_filter in (("mirrored", "hflip"), ("cropped", "crop=140:104,scale=160:120")):
        clips[name] = root / f"{name}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips["original"]), "-vf", video_filter, "-pix_fmt",
                        "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", str(clips[name])], check=True)
    return clips


# Generated scenes joined at irregular cuts: footage whose cut times are its own (`tests.cut_signal`).
CUT_SCENES = ["testsrc2", "mandelbrot=start_scale=0.5:end_scale=0.1", "life=seed=7:mold=10:life_color=#c04020",
              "cellauto=rule=30:seed=3:scroll=1", "smptehdbars",
              "mandelbrot=start_x=-0.7436:start_y=0.1318:start_scale=0.3:end_scale=0.05",
              "rgbtestsrc", "life=seed=99:mold=10:life_color=#20a0c0", "cellauto=rule=110:seed=9:scroll=1",
              "mandelbrot=start_x=0.3602:start_y=-0.6413:start_scale=0.3:end_scale=0.05", "testsrc", "smptebars"]


def _cut_clip(path: Path, durations: list[float], scenes: list[int]) -> Path:
    inputs: list[str] = []
    for seconds, n in zip(durations, scenes):
        name, _, options = CUT_SCENES[n].partition("=")
        inputs += ["-f", "lavfi", "-t", f"{seconds:.3f}", "-i",
                   f"{name}=size=320x180:rate=15" + (f":{options}" if options else "")]
    graph = ("".join(f"[{i}:v]format=yuv420p,setsar=1[v{i}];" for i in range(len(scenes)))
             + "".join(f"[v{i}]" for i in range(len(scenes))) + f"concat=n={len(scenes)}:v=1:a=0[out]")
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]", "-c:v",
                    "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def cut_clips(tmp_path_factory) -> dict[str, Path]:
    """An 11.6 s original cut irregularly, an unrelated clip, and copies of the original that frame hashes miss
    (rotated 20° and zoomed; a 55 % off-centre crop) or find (grey)."""
    root = tmp_path_factory.mktemp("cuts")
    clips = {"original": _cut_clip(root / "original.mp4", [1.6, 2.4, 1.2, 2.8, 1.4, 2.2], [0, 1, 2, 3, 4, 5]),
             "unrelated": _cut_clip(root / "unrelated.mp4", [2.3, 1.3, 2.6, 1.9, 1.1, 2.5], [6, 7, 8, 9, 10, 11])}
    for name, video_filter in (("rotated", "rotate=20*PI/180,scale=iw*1.35:ih*1.35,crop=320:180"),
                               ("off-centre", "crop=iw*0.55:ih*0.55:iw*0.42:ih*0.05,scale=320:180"),
                               ("grey", "hue=s=0")):
        clips[name] = root / f"{name}.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clips["original"]), "-vf", video_filter, "-c:v",
                        "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clips[name])], check=True)
    return clips
