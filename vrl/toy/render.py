"""Draw a :class:`~vrl.toy.scenes.Scene` with one ffmpeg call (lavfi sources and a filter graph).

How the graph is built, and why:

- the background is a ``color`` (or ``testsrc2``) source at an even size; odd frame sizes are cropped at
  the end (sources round odd sizes down) and encoded as yuv444p (x264's yuv420p needs even sizes);
- colors are exact RGB (``lutrgb``/``geq`` constants; the ``color`` source itself is off by one level);
- each object is its own source; circles and triangles get an alpha mask from ``geq``; motion comes
  from ``overlay`` position expressions in ``t`` (``drawbox`` does not animate in ffmpeg 5.1), and
  flashing from moving the object off-frame outside ``between(t,a,b)``; overlays run in planar RGB so
  positions are not rounded to chroma-subsampling multiples and colors are converted once, at the end;
- variable frame rate: the background gets ``settb`` + ``setpts`` before the objects are drawn, so
  positions follow the real timestamps, and the encoder keeps them (``-fps_mode passthrough`` with a
  matching ``-enc_time_base``);
- words are drawn with ``drawtext`` and a DejaVu Sans Bold font found on the system;
- determinism: bit-exact flags, no metadata, x264 with one thread and fixed settings, PNG/JPEG images.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from vrl.toy.scenes import Scene, ToyObject
from vrl.toy.spec import BACKGROUNDS, COLORS, PATTERN_BACKGROUND

_KNOWN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
)
_TEXT_COLORS = {"white": (255, 255, 255), **COLORS}


class RenderError(RuntimeError):
    """ffmpeg failed on a scene (the message carries its stderr)."""


@functools.cache
def ffmpeg_binary() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise RuntimeError("ffmpeg not found on PATH: install it (Debian: apt-get install ffmpeg)")
    return path


@functools.cache
def find_font() -> str:
    """Path of DejaVu Sans Bold (``fc-match``, then known Debian/Fedora/Arch paths)."""
    if shutil.which("fc-match"):
        out = subprocess.run(
            ["fc-match", "-f", "%{file}", "DejaVu Sans:style=Bold"], capture_output=True, text=True
        ).stdout.strip()
        if out.endswith("DejaVuSans-Bold.ttf") and Path(out).is_file():
            return out
    for path in _KNOWN_FONTS:
        if Path(path).is_file():
            return path
    raise RuntimeError(
        "No DejaVu Sans Bold font found for drawing words (toy OCR/math tasks): install fonts-dejavu-core"
    )


def _hex(rgb: tuple[int, int, int]) -> str:
    return "0x{:02X}{:02X}{:02X}".format(*rgb)


def _paint(rgb: tuple[int, int, int]) -> str:
    """Exact RGB through a lookup table (ffmpeg's ``color`` source goes through YUV: 0x606060 → 95)."""
    r, g, b = rgb
    return f"lutrgb=r={r}:g={g}:b={b}"


def _mask(obj: ToyObject) -> str | None:
    """``geq`` alpha expression for the object's shape (pixel centers at X+0.5), None for a square."""
    half = obj.size / 2
    if obj.shape == "square":
        return None
    if obj.shape == "circle":
        return f"255*lte(hypot(X+0.5-{half},Y+0.5-{half}),{half})"
    if obj.shape == "triangle":  # apex at the top middle, base along the bottom edge
        return f"255*lte(abs(X+0.5-{half}),(Y+0.5)/2)"
    raise ValueError(f"unknown shape '{obj.shape}'")


def _position(obj: ToyObject) -> tuple[str, str]:
    """``overlay`` x/y expressions: linear motion in ``t``; outside the visible intervals, off-frame.

    Visibility is not done with ``enable``: with ``overlay`` the timeline is evaluated on whichever input
    frame was consumed last, which may be the object's own stream, a frame ahead of the background.
    """
    x = f"{obj.x0}+{obj.vx}*t" if obj.vx else f"{obj.x0}"
    y = f"{obj.y0}+{obj.vy}*t" if obj.vy else f"{obj.y0}"
    if obj.visible:
        shown = "+".join(f"between(t,{a},{b})" for a, b in obj.visible)
        x = f"if({shown},{x},W)"
    return x, y


def _inputs_and_graph(scene: Scene, font: str | None) -> tuple[list[str], str]:
    even_w, even_h = scene.width + scene.width % 2, scene.height + scene.height % 2
    rate = scene.rate if scene.kind == "video" else "1"
    dur = scene.duration if scene.kind == "video" else 1.0
    timing = f"r={rate}:d={dur}"
    if scene.background == PATTERN_BACKGROUND:
        inputs = ["-f", "lavfi", "-i", f"testsrc2=s={even_w}x{even_h}:{timing}"]
        head = "[0:v]format=gbrp"
    else:
        inputs = ["-f", "lavfi", "-i", f"color=c=black:s={even_w}x{even_h}:{timing}"]
        head = "[0:v]format=gbrp," + _paint(BACKGROUNDS[scene.background])
    if scene.vfr:
        head += f",settb={_vfr_time_base(scene)},setpts='10*N+4*mod(N,2)'"
    chains = [head + "[b0]"]
    for i, obj in enumerate(scene.objects, start=1):
        # the object's source outlives the background so it never ends first
        inputs += ["-f", "lavfi", "-i", f"color=c=black:s={obj.size}x{obj.size}:r={rate}:d={dur + 2}"]
        r, g, b = COLORS[obj.color]
        mask = _mask(obj)
        paint = f"geq=r={r}:g={g}:b={b}:a='{mask}'" if mask else _paint((r, g, b)) + ":a=255"
        chains.append(f"[{i}:v]format=rgba,{paint}[o{i}]")
        x, y = _position(obj)
        chains.append(f"[b{i - 1}][o{i}]overlay=x='{x}':y='{y}':format=gbrp:eof_action=pass[b{i}]")
    last = f"[b{len(scene.objects)}]"
    post = []
    if scene.text is not None:
        assert font is not None
        color = _hex(_TEXT_COLORS[scene.text.color])
        post.append(
            f"drawtext=fontfile={font}:text='{scene.text.text}':fontsize={scene.text.font_size}"
            f":fontcolor={color}:x=(w-text_w)/2:y=(h-text_h)/2"
        )
    if (even_w, even_h) != (scene.width, scene.height):
        post.append(f"crop={scene.width}:{scene.height}:0:0")
    post.append(f"format={_pixel_format(scene)}")
    chains.append(last + ",".join(post) + "[v]")
    return inputs, ";".join(chains)


def _vfr_time_base(scene: Scene) -> str:
    """A tenth of the nominal frame interval: the variable timestamps are whole ticks of it."""
    if scene.fraction_rate.denominator != 1:
        raise ValueError(f"variable frame rate needs a whole nominal rate, got {scene.rate}")
    return f"1/{10 * scene.fraction_rate.numerator}"


def _pixel_format(scene: Scene) -> str:
    if scene.kind == "image":
        return "rgb24" if scene.image_format == "png" else "yuvj444p"
    return "yuv420p" if scene.width % 2 == 0 and scene.height % 2 == 0 else "yuv444p"


def _encoder_args(scene: Scene) -> list[str]:
    exact = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"]
    if scene.kind == "image":
        codec = ["-c:v", "png"] if scene.image_format == "png" else ["-c:v", "mjpeg", "-q:v", "2"]
        return ["-frames:v", "1", *codec, *exact, "-f", "image2"]
    args = ["-c:v", "libx264", "-preset", "medium", "-crf", "16", "-bf", "0", "-threads", "1", *exact]
    if scene.vfr:
        args += ["-fps_mode", "passthrough", "-enc_time_base:v", _vfr_time_base(scene)]
    return [*args, "-f", "mp4"]


def ffmpeg_command(scene: Scene, out: str | os.PathLike[str]) -> list[str]:
    """The full ffmpeg command drawing ``scene`` into ``out`` (useful for debugging a record)."""
    font = find_font() if scene.text is not None else None
    inputs, graph = _inputs_and_graph(scene, font)
    return [
        ffmpeg_binary(),
        "-nostdin",
        "-v",
        "error",
        "-y",
        *inputs,
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        *_encoder_args(scene),
        os.fspath(out),
    ]


def render(scene: Scene, out: str | os.PathLike[str]) -> Path:
    """Draw ``scene`` into ``out`` atomically (a temp name in the same folder, then rename)."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    proc = subprocess.run(ffmpeg_command(scene, tmp), capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RenderError(f"ffmpeg failed for {out.name}: {proc.stderr.strip()[-2000:]}")
    tmp.replace(out)
    return out
