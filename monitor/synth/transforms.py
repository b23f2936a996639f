"""Re-upload edits as ffmpeg filter-graph steps that compose.

The re-upload benchmark and `provenance calibrate` both render these edits:
the benchmark on its fixed corpus, calibrate on a sample of the user's own
stored footage, so the two measure the same transforms.

Each step turns one labelled stream into another (``[in] ... [out]``), so a
"combination" row is just several steps in a row.  Steps that need other
footage (picture-in-picture) name an extra input by its index.  The caption,
logo and vertical steps are *account templates*: the same design is drawn on
every post of that account, re-uploads and unrelated posts alike, which is
what makes them a trap for frame hashes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
HAVE_FONT = os.path.exists(FONT)

# step(input_label, output_label, unique_suffix) -> filter-graph text
Step = Callable[[str, str, str], str]


def vf(expr: str) -> Step:
    return lambda i, o, u: f"[{i}]{expr}[{o}]"


def _text(text: str, x: str, y: str, size: str, colour: str = "white") -> str:
    if not HAVE_FONT:  # banners stay (drawbox), only the lettering is lost
        return "null"
    return f"drawtext=fontfile={FONT}:text='{text}':x={x}:y={y}:fontsize={size}:fontcolor={colour}"


def caption(text: str) -> Step:
    """Account template A: an opaque top banner with the account name, a caption box at the bottom."""
    return vf(
        "drawbox=x=0:y=0:w=iw:h=ih*0.14:color=0x0a1a3c@1:t=fill,"
        + _text("DAILY CLIPS  @dailyclips", "w*0.04", "h*0.035", "h*0.065") + ","
        + "drawbox=x=0:y=ih*0.82:w=iw:h=ih*0.14:color=black@0.7:t=fill,"
        + _text(text, "w*0.04", "h*0.855", "h*0.055", "yellow")
    )


def logo() -> Step:
    """Account template B: a corner badge (about a fifth of the width)."""
    return vf(
        "drawbox=x=iw*0.76:y=ih*0.04:w=iw*0.2:h=ih*0.13:color=0xd01030@1:t=fill,"
        "drawbox=x=iw*0.78:y=ih*0.065:w=iw*0.05:h=ih*0.08:color=white@1:t=fill,"
        + _text("N24", "w*0.84", "h*0.07", "h*0.07")
    )


def vertical() -> Step:
    """Account template C: 9:16 frame, content over a blurred copy of itself, a title band on top."""
    def step(i: str, o: str, u: str) -> str:
        return (f"[{i}]split[a{u}][b{u}];"
                f"[a{u}]scale=360:640:force_original_aspect_ratio=increase,crop=360:640,boxblur=10[bg{u}];"
                f"[b{u}]scale=360:640:force_original_aspect_ratio=decrease,setsar=1[fg{u}];"
                f"[bg{u}][fg{u}]overlay=(W-w)/2:(H-h)/2,"
                "drawbox=x=0:y=0:w=iw:h=ih*0.11:color=0x202020@1:t=fill,"
                + _text("@viral.reels", "w*0.06", "h*0.035", "h*0.04") + f"[{o}]")
    return step


def centre_overlay(fraction: float) -> Step:
    """A large animated sticker over the centre of the picture (fraction of width and height)."""
    def step(i: str, o: str, u: str) -> str:
        return (f"testsrc2=size=256x256:rate=15[ov{u}];"
                f"[ov{u}][{i}]scale2ref=w=main_w*{fraction}:h=main_h*{fraction}[ovs{u}][m{u}];"
                f"[m{u}][ovs{u}]overlay=(W-w)/2:(H-h)/2:shortest=1[{o}]")
    return step


def pip(background_input: int, fraction: float) -> Step:
    """The footage at `fraction` of a 640x360 frame of other footage (input `background_input`)."""
    w, h = int(640 * fraction) // 2 * 2, int(360 * fraction) // 2 * 2

    def step(i: str, o: str, u: str) -> str:
        return (f"[{background_input}:v]scale=640:360,setsar=1[bg{u}];"
                f"[{i}]scale={w}:{h}:force_original_aspect_ratio=decrease,setsar=1[fg{u}];"
                f"[bg{u}][fg{u}]overlay=W-w-12:(H-h)/2:shortest=1[{o}]")
    return step


def crop(fraction: float) -> Step:
    return vf(f"crop=iw*{fraction}:ih*{fraction}")


def letterbox(ratio: float) -> Step:
    """Black bars above and below: height becomes `ratio` x the width."""
    return vf(f"pad=iw:trunc(iw*{ratio}/2)*2:0:(oh-ih)/2:black")


def pillarbox(ratio: float) -> Step:
    """Black bars left and right: width becomes `ratio` x the height."""
    return vf(f"pad=trunc(ih*{ratio}/2)*2:ih:(ow-iw)/2:0:black")


def speed(factor: float) -> Step:
    return vf(f"setpts=PTS/{factor}")


def fps(rate: float) -> Step:
    return vf(f"fps={rate}")


def reencode_360p() -> Step:
    return vf("scale=-2:360,fps=24")


FIT_640x360 = "scale=640:360:force_original_aspect_ratio=decrease,pad=640:360:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=25"


@dataclass
class Input:
    path: Path
    start: float | None = None
    duration: float | None = None
    lavfi: bool = False  # `path` is an ffmpeg lavfi source description
    loop: bool = False  # repeat the input for as long as the output needs it

    def args(self) -> list[str]:
        out: list[str] = ["-f", "lavfi"] if self.lavfi else []
        if self.loop:
            out += ["-stream_loop", "-1"]
        if self.start is not None:
            out += ["-ss", f"{self.start:.3f}"]
        if self.duration is not None:
            out += ["-t", f"{self.duration:.3f}"]
        return out + ["-i", str(self.path)]


@dataclass
class Recipe:
    """ffmpeg inputs and either a chain of steps on input 0 or a concat of all inputs."""

    inputs: list[Input]
    steps: list[Step] = field(default_factory=list)
    concat: bool = False
    crf: int = 23

    def graph(self) -> str:
        if self.concat:
            parts = [f"[{k}:v]{FIT_640x360},format=yuv420p[c{k}]" for k in range(len(self.inputs))]
            joined = "".join(f"[c{k}]" for k in range(len(self.inputs)))
            return ";".join(parts) + f";{joined}concat=n={len(self.inputs)}:v=1:a=0[pre];" + _FINISH
        label, pieces = "0:v", []
        for n, step in enumerate(self.steps):
            pieces.append(step(label, f"s{n}", f"_{n}"))
            label = f"s{n}"
        return ";".join(pieces + [_FINISH.replace("[pre]", f"[{label}]")])

    def argv(self, dst: Path) -> list[str]:
        inputs = [a for i in self.inputs for a in i.args()]
        return ["ffmpeg", "-y", "-nostdin", "-hide_banner", "-v", "error", *inputs,
                "-filter_complex", self.graph(), "-map", "[out]", "-an", "-c:v", "libx264", "-preset", "veryfast",
                "-crf", str(self.crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(dst)]

    def key(self) -> str:
        return hashlib.sha256("\0".join(self.argv(Path("out.mp4"))).encode()).hexdigest()[:10]


_FINISH = "[pre]scale=trunc(iw/2)*2:trunc(ih/2)*2,setsar=1,format=yuv420p[out]"


class RenderError(RuntimeError):
    """ffmpeg could not make a transformed copy; the message ends with ffmpeg's own complaint."""


def render(recipe: Recipe, dst: Path, timeout: float = 600) -> Path:
    """Run ffmpeg (niced: the machine is shared) unless `dst` exists already.

    The copy is written under a temporary name beside `dst` and renamed when
    complete, so `dst` is either absent or whole, even when runs overlap.
    """
    dst = Path(dst)
    if dst.exists():
        return dst
    if shutil.which("ffmpeg") is None:
        raise RenderError("ffmpeg not found: install it (apt-get install ffmpeg)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{uuid.uuid4().hex[:8]}.part{dst.suffix or '.mp4'}")
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    try:
        proc = subprocess.run([*nice, *recipe.argv(tmp)], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            complaint = " ".join(proc.stderr.split())[-800:] or f"exit status {proc.returncode}"
            raise RenderError(f"ffmpeg failed for {dst.name}: {complaint}")
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise RenderError(f"ffmpeg wrote nothing for {dst.name}")
        os.replace(tmp, dst)
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"ffmpeg took more than {timeout:g} s for {dst.name}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dst
