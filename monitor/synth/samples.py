"""Make sample footage and re-upload edits of it with ffmpeg, offline.

The demo, the tests and the benchmarks need videos that nobody has to
download: a "source" clip made of several generated scenes (distinct per seed),
and the edits that re-uploads apply to footage (mirror, letterbox, a blurred
9:16 reframe, excerpts, speed changes).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


class SampleError(Exception):
    pass


# Far-apart places on the Mandelbrot set's boundary, so seeds zoom into different pictures.
_MANDELBROT_POINTS = [
    (-0.743643887037151, 0.131825904205330),
    (0.001643721971153, -0.822467633298876),
    (-1.768778833, -0.001738996),
    (-0.101096363845740, 0.956286510809140),
    (0.360240443437614, -0.641313061064803),
    (-1.250066, 0.020120),
    (-0.170337, -1.065060),
    (0.432539867562512, 0.226118675951765),
]
_SECOND_SCENE_POINTS = [
    (-0.774680610626904, -0.137416885603787),
    (-0.235125, 0.827215),
    (-0.722, 0.246),
    (-0.1592, -1.0317),
    (0.375000120061866, -0.216639388437713),
    (-0.811531234045835, 0.201429611243366),
    (-1.401155189, 0.000000001),
    (-0.7453, 0.1127),
]


def _scene_sources(seed: int, seconds: float, size: str, fps: int) -> list[str]:
    """Four visually different generated scenes; the seed changes every one of them.

    Scenes 0 and 3 zoom into one of 8 places on the Mandelbrot set, so seeds
    that are equal modulo 8 share those two scenes (the same footage).
    """
    def mandelbrot(points: list[tuple[float, float]]) -> str:
        x, y = points[seed % len(points)]
        return (f"mandelbrot=size={size}:rate={fps}:start_x={x}:start_y={y}:start_scale=0.3:end_scale=0.05"
                f":end_pts={seconds:.1f}:inner=period:maxiter=200")

    return [
        mandelbrot(_MANDELBROT_POINTS),
        f"life=size={size}:rate={fps}:seed={seed * 7919 % 100003}:ratio=0.{3 + seed % 4}:mold=10"
        ":life_color=#{:06x}:death_color=#102030".format((seed * 2654435761) % 0xFFFFFF),
        f"cellauto=size={size}:rate={fps}:rule={[18, 22, 26, 30, 45, 57, 73, 90, 105, 110, 126, 150][seed % 12]}"
        f":seed={seed}:scroll=1",
        mandelbrot(_SECOND_SCENE_POINTS),
    ]


def make_source_clip(path: Path, seed: int, duration: float = 12.0, size: str = "320x180",
                     fps: int = 15, scene_order: tuple[int, ...] = (0, 1, 2, 3)) -> Path:
    """Write an H.264 clip of generated scenes, cut every duration/len(scenes) seconds."""
    per_scene = duration / len(scene_order)
    sources = _scene_sources(seed, per_scene, size, fps)
    inputs: list[str] = []
    for n in scene_order:
        inputs += ["-f", "lavfi", "-t", f"{per_scene:.3f}", "-i", sources[n]]
    chains = "".join(f"[{i}:v]format=yuv420p,setsar=1[v{i}];" for i in range(len(scene_order)))
    concat = "".join(f"[v{i}]" for i in range(len(scene_order)))
    graph = f"{chains}{concat}concat=n={len(scene_order)}:v=1:a=0[out]"
    _run(["ffmpeg", *inputs, "-filter_complex", graph, "-map", "[out]", *_encode_args(), str(path)])
    return path


# Re-upload edits as ffmpeg video filters.  Input footage is landscape.
EDITS: dict[str, str] = {
    "mirror": "hflip",
    "letterbox": "scale=320:-2,pad=320:280:0:(oh-ih)/2:black",
    "blurpad_9x16": (
        "split[a][b];[a]scale=180:320:force_original_aspect_ratio=increase,crop=180:320,boxblur=12[bg];"
        "[b]scale=180:-2[fg];[bg][fg]overlay=0:(H-h)/2"
    ),
    "speed_1.25x": "setpts=PTS/1.25",
    "grey": "hue=s=0",
}


def make_edit(src: Path, dst: Path, video_filter: str | None = None, start: float | None = None,
              duration: float | None = None) -> Path:
    """Apply an edit (an ffmpeg filter, an excerpt, or both) to `src`."""
    cmd = ["ffmpeg"]
    if start is not None:
        cmd += ["-ss", f"{start:.3f}"]
    cmd += ["-i", str(src)]
    if duration is not None:
        cmd += ["-t", f"{duration:.3f}"]
    if video_filter:
        cmd += ["-filter_complex", video_filter]
    _run([*cmd, *_encode_args(), str(dst)])
    return dst


def _encode_args() -> list[str]:
    return ["-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart"]


def _run(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(["ffmpeg", "-y", "-nostdin", "-hide_banner", "-v", "error", *cmd[1:]],
                              capture_output=True, timeout=300, check=False)
    except FileNotFoundError as exc:  # pragma: no cover - depends on the machine
        raise SampleError("ffmpeg not found: install it (apt-get install ffmpeg)") from exc
    if proc.returncode != 0:
        raise SampleError(f"ffmpeg failed: {proc.stderr.decode('utf-8', 'replace').strip()[-500:]}")
