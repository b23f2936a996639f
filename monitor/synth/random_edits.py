"""Re-upload edits with every parameter drawn at random from wide ranges.

`monitor.synth.transforms` has fixed edits (a crop of 80%, a caption in one
place), and a matcher tuned on a fixed list learns that list: the project's
own suite reached recall 1.00 while other footage with other edits found two
thirds of the true posts.  Here each edit kind draws its parameters (angle,
crop anchor, pad colour and shape, window position, speed, text, ...) from
an `random.Random`, so a benchmark seed or a calibration run sees edits no
one tuned on.  The same generators serve the benchmark
(`benchmarks/reupload_suite.py`) and can serve `provenance calibrate`.

An `Edit` is one ffmpeg filter-graph step (see `monitor.synth.transforms.Step`)
plus what it does to time (`speed`) and any other footage it shows (a
picture-in-picture background).  `chain_recipe` turns an excerpt of some
footage and a list of edits into a `monitor.synth.transforms.Recipe`; the output
shows footage seconds ``start .. start + duration`` at ``speed`` footage
seconds per output second.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.synth import transforms as T

MAX_SIDE = 640  # footage is scaled down to this first: re-uploads are rarely larger, and rendering stays cheap
WORDS = ("breaking news today you will not believe this watch till the end shared from a friend is this real "
         "live from the street look at what happened here crazy moment caught on camera wait for it original "
         "video credit unknown must see viral clip omg full story in bio follow for more part two").split()

# an edit kind -> draws its parameters and builds the edit (see KINDS)
Generator = Callable[[random.Random], "Edit"]


@dataclass(frozen=True)
class Background:
    """Other footage an edit shows beside the edited one (a picture-in-picture or split-screen partner)."""

    path: Path
    start: float
    name: str  # the footage's name, for ground truth


@dataclass
class Edit:
    kind: str
    params: dict[str, Any]
    make: Callable[[str | None], T.Step]  # the step, given the label of the background input (or None)
    speed: float = 1.0  # footage seconds per output second
    background: Background | None = None
    crf: int | None = None  # this edit re-encodes at this quality

    def describe(self) -> str:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())
        return f"{self.kind}({shown})" if shown else self.kind


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _step(expr: str) -> Callable[[str | None], T.Step]:
    return lambda _bg: T.vf(expr)


def _even(expr_w: str, expr_h: str) -> str:
    return f"w='trunc(({expr_w})/2)*2':h='trunc(({expr_h})/2)*2'"


def _colour(rng: random.Random) -> str:
    return f"0x{rng.randrange(0x1000000):06x}"


def _text(rng: random.Random, words: tuple[int, int] = (2, 6)) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words)))


def drawtext(text: str, x: str, y: str, size: str, colour: str, extra: str = "") -> str:
    """A drawtext filter, or `null` where the font is missing (boxes stay, lettering is lost)."""
    if not T.HAVE_FONT:
        return "null"
    return f"drawtext=fontfile={T.FONT}:text='{text}':x={x}:y={y}:fontsize={size}:fontcolor={colour}{extra}"


# -- geometry ------------------------------------------------------------------------------------------

def mirror(rng: random.Random) -> Edit:
    return Edit("mirror", {}, _step("hflip"))


def rotate_zoom(rng: random.Random, max_degrees: float = 10.0) -> Edit:
    """Rotate by up to `max_degrees` and zoom so no corner shows (as editing apps do)."""
    deg = rng.uniform(1.0, max_degrees) * rng.choice((-1, 1))
    a = math.radians(deg)
    k = f"({math.cos(abs(a)):.5f}+{math.sin(abs(a)):.5f}*max(iw/ih,ih/iw))"
    return Edit("rotate-zoom", {"degrees": round(deg, 2)}, _step(
        f"scale={_even(f'iw*{k}', f'ih*{k}')},rotate={a:.5f}:c=black,crop={_even(f'iw/{k}', f'ih/{k}')}"))


def perspective(rng: random.Random) -> Edit:
    """A mild keystone: each corner of a slightly smaller quadrilateral is stretched to the frame's corner."""
    d = [round(rng.uniform(0.0, 0.08), 3) for _ in range(8)]
    pts = (f"x0=W*{d[0]}:y0=H*{d[1]}:x1=W*(1-{d[2]}):y1=H*{d[3]}:"
           f"x2=W*{d[4]}:y2=H*(1-{d[5]}):x3=W*(1-{d[6]}):y3=H*(1-{d[7]})")
    return Edit("perspective", {"insets": d}, _step(f"perspective={pts}:interpolation=linear"))


def stretch(rng: random.Random) -> Edit:
    """Aspect stretch or squeeze: each axis scaled by 0.75-1.33, the two at least 12% apart."""
    while True:
        sx, sy = math.exp(rng.uniform(math.log(0.75), math.log(1.33))), \
            math.exp(rng.uniform(math.log(0.75), math.log(1.33)))
        if abs(math.log(sx / sy)) >= math.log(1.12):
            break
    return Edit("stretch", {"x": round(sx, 3), "y": round(sy, 3)},
                _step(f"scale={_even(f'iw*{sx:.4f}', f'ih*{sy:.4f}')},setsar=1"))


def crop_offcentre(rng: random.Random, low: float = 0.5, high: float = 0.95) -> Edit:
    """Keep 50-95% of each side, anchored anywhere: a corner, one side, or in between."""
    fw = rng.uniform(low, high)
    fh = fw if rng.random() < 0.5 else rng.uniform(low, high)
    ax, ay = (rng.choice((0.0, 1.0, rng.random())) for _ in range(2))
    return Edit("crop-offcentre", {"w": round(fw, 3), "h": round(fh, 3), "ax": round(ax, 2), "ay": round(ay, 2)},
                _step(f"crop={_even(f'iw*{fw:.4f}', f'ih*{fh:.4f}')}:x='(iw-ow)*{ax:.3f}':y='(ih-oh)*{ay:.3f}'"))


PAD_ASPECTS = (1.0, 9 / 16, 4 / 5, 16 / 9, 2.0, 3 / 4)


def pad_colour(rng: random.Random) -> Edit:
    """Pads to another shape (square, 9:16, 4:5, 16:9, ... or anything 0.5-2), white, black, any colour or blurred."""
    aspect = rng.choice(PAD_ASPECTS) if rng.random() < 0.7 else rng.uniform(0.5, 2.0)
    margin = rng.choice((0.0, rng.uniform(0.02, 0.12)))
    px, py = (0.5, 0.5) if rng.random() < 0.5 else (rng.random(), rng.random())
    fill = rng.choices(("white", "black", "colour", "blurred"), (0.3, 0.2, 0.25, 0.25))[0]
    colour = {"white": "white", "black": "black"}.get(fill, _colour(rng))
    m = 1 + margin
    w, h = f"max(iw*{m:.3f},ih*{m:.3f}*{aspect:.4f})", f"max(ih*{m:.3f},iw*{m:.3f}/{aspect:.4f})"
    params = {"aspect": round(aspect, 3), "fill": fill if fill != "colour" else colour,
              "margin": round(margin, 3), "x": round(px, 2), "y": round(py, 2)}
    if fill != "blurred":
        return Edit("pad-colour", params, _step(
            f"pad={_even(w, h)}:x='(ow-iw)*{px:.3f}':y='(oh-ih)*{py:.3f}':color={colour}"))

    def make(_bg: str | None) -> T.Step:
        return lambda i, o, u: (f"[{i}]split[a{u}][b{u}];[a{u}]scale={_even(w, h)},boxblur=12[bg{u}];"
                                f"[bg{u}][b{u}]overlay=x='(W-w)*{px:.3f}':y='(H-h)*{py:.3f}'[{o}]")
    return Edit("pad-colour", params, make)


# -- other footage in the frame ------------------------------------------------------------------------

def picture_in_picture(rng: random.Random, background: Background) -> Edit:
    """The footage in a window of 30-80% of a frame of other footage, anywhere in it."""
    canvas = rng.choice(((640, 360), (360, 640), (480, 480)))
    f = rng.uniform(0.3, 0.8)
    px, py = rng.random(), rng.random()
    cw, ch = canvas

    def make(bg: str | None) -> T.Step:
        return lambda i, o, u: (
            f"[{bg}]scale={cw}:{ch}:force_original_aspect_ratio=increase,crop={cw}:{ch},setsar=1,fps=25[bg{u}];"
            f"[{i}]scale=w={int(cw * f) // 2 * 2}:h={int(ch * f) // 2 * 2}:force_original_aspect_ratio=decrease,"
            f"setsar=1[fg{u}];[bg{u}][fg{u}]overlay=x='(W-w)*{px:.3f}':y='(H-h)*{py:.3f}':shortest=1[{o}]")
    return Edit("pip", {"canvas": f"{cw}x{ch}", "fraction": round(f, 3), "x": round(px, 2), "y": round(py, 2)},
                make, background=background)


def split_screen(rng: random.Random, background: Background) -> Edit:
    """Side by side or stacked with other footage; the edited footage fills 30-80% of the frame."""
    horizontal = rng.random() < 0.5
    f = rng.uniform(0.3, 0.8)
    first = rng.random() < 0.5
    cw, ch = (640, 360) if horizontal else (360, 640)
    if horizontal:
        a, b = (int(cw * f) // 2 * 2, ch), (cw - int(cw * f) // 2 * 2, ch)
    else:
        a, b = (cw, int(ch * f) // 2 * 2), (cw, ch - int(ch * f) // 2 * 2)
    stack = "hstack" if horizontal else "vstack"

    def make(bg: str | None) -> T.Step:
        def fill(size: tuple[int, int]) -> str:
            return f"scale={size[0]}:{size[1]}:force_original_aspect_ratio=increase,crop={size[0]}:{size[1]},setsar=1"
        return lambda i, o, u: (f"[{i}]{fill(a)},fps=25[fg{u}];[{bg}]{fill(b)},fps=25[bg{u}];"
                                + (f"[fg{u}][bg{u}]" if first else f"[bg{u}][fg{u}]")
                                + f"{stack}=inputs=2:shortest=1[{o}]")
    return Edit("split", {"layout": stack, "fraction": round(f, 3), "first": first}, make, background=background)


def screen_recording(rng: random.Random, spec: dict[str, Any] | None = None) -> Edit:
    """The video scaled into a synthetic player or phone screen (bars, buttons, progress, text, maybe a cursor).

    `spec` fixes the layout (an account's template); otherwise it is drawn.
    """
    s = spec or screen_layout(rng)
    cw, ch = s["canvas"]
    rx, ry, rw, rh = s["player"]
    ui, bar, accent = s["ui"], s["bar"], s["accent"]
    pieces = [f"color=c={ui}:s={cw}x{ch}:r={s['fps']}[cv{{u}}]",
              f"[{{i}}]scale={rw}:{rh}:force_original_aspect_ratio=decrease,pad={rw}:{rh}:(ow-iw)/2:(oh-ih)/2:black,"
              f"setsar=1[pl{{u}}]",
              f"[cv{{u}}][pl{{u}}]overlay=x={rx}:y={ry}:shortest=1,"
              f"drawbox=x=0:y=0:w=iw:h={int(ch * s['top'])}:color={bar}@1:t=fill,"
              + drawtext(s["title"], "w*0.05", f"{int(ch * s['top'] * 0.3)}", f"{max(8, int(ch * s['top'] * 0.45))}",
                         "white")
              + f",drawbox=x={rx}:y={ry + rh + 6}:w={rw}:h=4:color=gray@1:t=fill"
              + "".join(f",drawbox=x={bx}:y={by}:w={bw}:h={bw}:color={accent}@1:t=fill" for bx, by, bw in s["buttons"])
              + "," + drawtext(s["caption"], f"{rx}", f"{min(ch - 20, ry + rh + 16)}", f"{max(8, ch // 40)}",
                               s["text"]) + "[ui{u}]",
              f"color=c={accent}:s=10x10:r={s['fps']}[ph{{u}}]"]
    last = f"[ui{{u}}][ph{{u}}]overlay=x='{rx}+{rw - 10}*min(1,t/{s['length']:.2f})':y={ry + rh + 3}:shortest=1"
    if s["cursor"]:
        pieces.append(f"color=c=white:s=9x14:r={s['fps']}[cu{{u}}]")
        last += (f"[uc{{u}}];[uc{{u}}][cu{{u}}]overlay=x='{cw // 2}+{cw // 4}*sin(t*{s['cursor_speed']:.2f})'"
                 f":y='{ch // 2}+{ch // 5}*cos(t*{s['cursor_speed'] * 0.7:.2f})':shortest=1")
    graph = ";".join(pieces + [last + ",format=yuv420p[{o}]"])

    def make(_bg: str | None) -> T.Step:
        return lambda i, o, u: graph.replace("{u}", u).replace("{i}", i).replace("{o}", o)
    return Edit("screen-recording", {k: v for k, v in s.items() if k not in ("buttons",)}, make,
                crf=s["crf"])


def screen_layout(rng: random.Random, length: float = 12.0) -> dict[str, Any]:
    """A random player / phone-screen layout."""
    phone = rng.random() < 0.5
    cw, ch = rng.choice(((360, 640), (405, 720))) if phone else rng.choice(((854, 480), (640, 400), (768, 432)))
    top = rng.uniform(0.05, 0.11)
    rw = int(cw * (rng.uniform(0.9, 1.0) if phone else rng.uniform(0.5, 0.85))) // 2 * 2
    rh = int(rw * rng.uniform(0.5, 0.8) if phone else ch * rng.uniform(0.45, 0.7)) // 2 * 2
    rx = (cw - rw) // 2 if phone else int(rng.uniform(0.0, 1.0) * (cw - rw))
    ry = int(ch * top) + int(rng.uniform(0.0, 0.3) * (ch - rh - int(ch * top) - 40))
    dark = rng.random() < 0.5
    buttons = [(int(rng.uniform(0.05, 0.9) * cw), int(rng.uniform(0.75, 0.95) * ch), rng.randint(12, 28))
               for _ in range(rng.randint(2, 5))]
    return {"canvas": (cw, ch), "player": (rx, ry, rw, rh), "top": round(top, 3),
            "ui": rng.choice(("0x101010", "0x202124", "0x0f0f23")) if dark else rng.choice(("white", "0xf2f2f2")),
            "bar": _colour(rng), "accent": rng.choice(("red", "0x3ea6ff", "0xfe2c55", _colour(rng))),
            "text": "white" if dark else "black", "title": _text(rng, (1, 3)), "caption": _text(rng, (3, 7)),
            "buttons": buttons, "cursor": rng.random() < 0.5, "cursor_speed": rng.uniform(0.3, 1.5),
            "fps": rng.choice((24, 25, 30, 60)), "crf": rng.randint(24, 33), "length": length}


# -- time ------------------------------------------------------------------------------------------------

def speed(rng: random.Random, extreme: bool = False) -> Edit:
    """A speed change: 0.5-0.8x or 1.25-2x when `extreme`, else 0.8-1.25x (never within 4% of 1)."""
    while True:
        if extreme:
            k = rng.uniform(0.5, 0.8) if rng.random() < 0.4 else rng.uniform(1.25, 2.0)
        else:
            k = math.exp(rng.uniform(math.log(0.8), math.log(1.25)))
        if abs(k - 1) >= 0.04:
            break
    return Edit("speed", {"factor": round(k, 3)}, _step(f"setpts=PTS/{k:.4f}"), speed=round(k, 4))


def frame_rate(rng: random.Random) -> Edit:
    r = rng.choice((10, 12, 15, 20, 24, 25, 30, 48, 50, 60))
    return Edit("fps", {"rate": r}, _step(f"fps={r}"))


# -- look ----------------------------------------------------------------------------------------------

SEPIA = "colorchannelmixer=.393:.769:.189:0:.349:.686:.168:0:.272:.534:.131"


def colour_filter(rng: random.Random) -> Edit:
    """One or two of sepia, grey, saturation, contrast, gamma, hue, vignette, noise, blur."""
    options: dict[str, Callable[[], str]] = {
        "sepia": lambda: SEPIA,
        "grey": lambda: "hue=s=0",
        "saturation": lambda: f"eq=saturation={rng.choice((rng.uniform(0.0, 0.6), rng.uniform(1.4, 2.5))):.2f}",
        "contrast": lambda: f"eq=contrast={rng.uniform(0.6, 1.6):.2f}:brightness={rng.uniform(-0.12, 0.12):.2f}",
        "gamma": lambda: f"eq=gamma={rng.uniform(0.6, 1.6):.2f}",
        "hue": lambda: f"hue=h={rng.uniform(-90, 90):.0f}",
        "vignette": lambda: f"vignette=angle={rng.uniform(0.5, 1.0):.2f}",
        "noise": lambda: f"noise=alls={rng.randint(6, 25)}:allf=t",
        "blur": lambda: f"gblur=sigma={rng.uniform(0.8, 3.0):.2f}",
    }
    names = rng.sample(sorted(options), rng.randint(1, 2))
    return Edit("filter", {"filters": "+".join(names)}, _step(",".join(options[n]() for n in names)))


def low_resolution(rng: random.Random) -> Edit:
    """144p-240p and heavy compression (CRF 32-42)."""
    h = rng.choice((144, 160, 180, 200, 240))
    crf = rng.randint(32, 42)
    return Edit("lowres", {"height": h, "crf": crf}, _step(f"scale=-2:{h}"), crf=crf)


def reencode(rng: random.Random) -> Edit:
    """What any upload does: scaled to 50-100% and re-encoded at CRF 18-30."""
    f = rng.uniform(0.5, 1.0)
    crf = rng.randint(18, 30)
    return Edit("reencode", {"scale": round(f, 2), "crf": crf}, _step(f"scale={_even(f'iw*{f:.3f}', f'ih*{f:.3f}')}"),
                crf=crf)


# -- things drawn over the picture -------------------------------------------------------------------

def caption(rng: random.Random, text: str | None = None) -> Edit:
    """Random text in a box of random colour at a random height."""
    text = text or _text(rng)
    size = rng.uniform(0.04, 0.09)
    y = rng.choice((rng.uniform(0.02, 0.15), rng.uniform(0.7, 0.9), rng.uniform(0.15, 0.7)))
    box = rng.choice(("black", "white", "yellow", "red", _colour(rng)))
    alpha = rng.uniform(0.5, 1.0)
    full_width = rng.random() < 0.5
    colour = "black" if box in ("white", "yellow") else "white"
    if full_width:
        bar = f"drawbox=x=0:y=ih*{y:.3f}-ih*{size * 0.4:.3f}:w=iw:h=ih*{size * 1.8:.3f}:color={box}@{alpha:.2f}:t=fill,"
        txt = drawtext(text, "(w-tw)/2", f"h*{y:.3f}", f"h*{size:.3f}", colour)
    else:
        bar = ""
        txt = drawtext(text, "(w-tw)/2", f"h*{y:.3f}", f"h*{size:.3f}", colour,
                       f":box=1:boxcolor={box}@{alpha:.2f}:boxborderw=8")
    return Edit("caption", {"text": text, "y": round(y, 2), "size": round(size, 3), "box": box,
                            "full_width": full_width}, _step(bar + txt))


def sticker(rng: random.Random) -> Edit:
    """An animated sticker (10-30% of the width) somewhere over the picture, maybe moving."""
    kind = rng.choice(("testsrc2", "rgbtestsrc", "color", "mandelbrot"))
    src = {"testsrc2": "testsrc2=s=128x128:r=25", "rgbtestsrc": "rgbtestsrc=s=128x128:r=25",
           "color": f"color=c={_colour(rng)}:s=128x128:r=25,"
                    + drawtext(rng.choice(("LOL", "WOW", "OMG", "NEW", "HOT")), "(w-tw)/2", "(h-th)/2", "40", "white"),
           "mandelbrot": "mandelbrot=s=128x128:r=25:maxiter=64"}[kind]
    f = rng.uniform(0.1, 0.3)
    px, py = rng.random(), rng.random()
    moving = rng.random() < 0.4
    x = f"(W-w)*{px:.3f}" + (f"+W*0.1*sin(t*{rng.uniform(0.5, 2):.2f})" if moving else "")
    y = f"(H-h)*{py:.3f}" + (f"+H*0.1*cos(t*{rng.uniform(0.5, 2):.2f})" if moving else "")

    def make(_bg: str | None) -> T.Step:
        return lambda i, o, u: (f"{src}[st{u}];[st{u}][{i}]scale2ref=w=main_w*{f:.3f}:h=ow[sts{u}][m{u}];"
                                f"[m{u}][sts{u}]overlay=x='{x}':y='{y}':shortest=1[{o}]")
    return Edit("sticker", {"kind": kind, "fraction": round(f, 3), "x": round(px, 2), "y": round(py, 2),
                            "moving": moving}, make)


def moving_watermark(rng: random.Random) -> Edit:
    """Semi-transparent text drifting across the picture."""
    text = "@" + rng.choice(WORDS) + rng.choice(("", "_", ".")) + rng.choice(WORDS)
    v = rng.uniform(20, 90)
    alpha = rng.uniform(0.3, 0.7)
    y0 = rng.uniform(0.1, 0.8)
    return Edit("watermark", {"text": text, "speed_px": round(v, 1), "alpha": round(alpha, 2)},
                _step(drawtext(text, f"'mod(t*{v:.1f},w+tw)-tw'", f"'h*{y0:.2f}+h*0.05*sin(t)'",
                               f"h*{rng.uniform(0.04, 0.08):.3f}", f"white@{alpha:.2f}")))


def logo_badge(rng: random.Random, spec: dict[str, Any] | None = None) -> Edit:
    """A corner badge (an account's logo): a box with lettering, 12-25% of the width."""
    s = spec or {"corner": (rng.choice((0.03, 0.75)), rng.choice((0.03, 0.8))), "w": rng.uniform(0.12, 0.22),
                 "colour": _colour(rng), "text": rng.choice(("N24", "TV1", "LIVE", "NEWS", "HD")),
                 "alpha": rng.uniform(0.7, 1.0)}
    (x, y), w = s["corner"], s["w"]
    return Edit("logo", {k: v for k, v in s.items()}, _step(
        f"drawbox=x=iw*{x}:y=ih*{y}:w=iw*{w:.3f}:h=iw*{w * 0.45:.3f}:color={s['colour']}@{s['alpha']:.2f}:t=fill,"
        + drawtext(s["text"], f"w*{x + 0.01}", f"h*{y}+w*{w * 0.08:.3f}", f"w*{w * 0.25:.3f}", "white")))


def banner(rng: random.Random, spec: dict[str, Any] | None = None) -> Edit:
    """An account's template: an opaque bar with the handle, and the post's own caption in a box."""
    s = spec or {"top": rng.choice((True, False)), "h": rng.uniform(0.08, 0.16), "colour": _colour(rng),
                 "handle": "@" + rng.choice(WORDS) + rng.choice(WORDS)}
    y = "0" if s["top"] else f"ih*{1 - s['h']:.3f}"
    ty = f"h*{s['h'] * 0.3:.3f}" if s["top"] else f"h*{1 - s['h'] * 0.7:.3f}"
    text = _text(rng)
    cy = f"h*{0.82 if s['top'] else 0.1}"
    return Edit("banner", {"handle": s["handle"], "caption": text}, _step(
        f"drawbox=x=0:y={y}:w=iw:h=ih*{s['h']:.3f}:color={s['colour']}@1:t=fill,"
        + drawtext(s["handle"], "w*0.04", ty, f"h*{s['h'] * 0.4:.3f}", "white") + ","
        + drawtext(text, "(w-tw)/2", cy, "h*0.05", "white", ":box=1:boxcolor=black@0.6:boxborderw=6")))


def remix(rng: random.Random) -> list[Edit]:
    """The "remix account" edit: an off-centre crop, a caption box and a slight speed-up."""
    k = rng.uniform(1.04, 1.2)
    return [crop_offcentre(rng, 0.6, 0.9), caption(rng),
            Edit("speed", {"factor": round(k, 3)}, _step(f"setpts=PTS/{k:.4f}"), speed=round(k, 4))]


# Kinds a random chain draws from (those needing other footage are added by the caller).
KINDS: dict[str, Generator] = {
    "mirror": mirror, "rotate-zoom": rotate_zoom, "perspective": perspective, "stretch": stretch,
    "crop-offcentre": crop_offcentre, "pad-colour": pad_colour, "speed": speed, "fps": frame_rate,
    "filter": colour_filter, "lowres": low_resolution, "caption": caption, "sticker": sticker,
    "watermark": moving_watermark, "screen-recording": screen_recording,
}


def random_chain(rng: random.Random, length: int, kinds: tuple[str, ...] | None = None) -> list[Edit]:
    """`length` edits of different kinds, in random order."""
    names = rng.sample(sorted(kinds or KINDS), length)
    return [KINDS[n](rng) for n in names]


@dataclass
class ChainRender:
    """A rendered-to-be chain: the recipe, and what the output shows of the footage."""

    recipe: T.Recipe
    speed: float  # footage seconds per output second
    duration: float  # output seconds
    edits: list[Edit] = field(default_factory=list)


def chain_recipe(path: Path, start: float, duration: float, edits: list[Edit], crf: int = 23,
                 background_seconds: float | None = None) -> ChainRender:
    """Footage seconds `start .. start+duration` of `path`, then `edits` in order (at most one background)."""
    inputs = [T.Input(Path(path), round(start, 3), round(duration, 3))]
    steps: list[T.Step] = [T.vf(f"format=yuv420p,setsar=1,scale=w='trunc(min(1,{MAX_SIDE}/max(iw,ih))*iw/2)*2'"
                                f":h='trunc(min(1,{MAX_SIDE}/max(iw,ih))*ih/2)*2'")]
    k = 1.0
    for e in edits:
        label = None
        if e.background is not None:
            if len(inputs) > 1:
                raise ValueError("a chain shows at most one other footage")
            inputs.append(T.Input(e.background.path, e.background.start, background_seconds, loop=True))
            label = "1:v"
        steps.append(e.make(label))
        steps.append(T.vf("scale=w='trunc(iw/2)*2':h='trunc(ih/2)*2',setsar=1"))
        k *= e.speed
        if e.crf is not None:
            crf = max(crf, e.crf)
    steps.append(T.vf(f"scale=w='trunc(min(1,{MAX_SIDE * 4 // 3}/max(iw,ih))*iw/2)*2'"
                      f":h='trunc(min(1,{MAX_SIDE * 4 // 3}/max(iw,ih))*ih/2)*2'"))
    return ChainRender(T.Recipe(inputs, steps, crf=crf), speed=k, duration=duration / k, edits=list(edits))
