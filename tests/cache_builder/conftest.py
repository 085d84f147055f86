"""Fixtures for the cache tests: tiny generated videos and images (ffmpeg lavfi), records, a build helper."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _import_real_package() -> None:
    """Make ``import cache_builder`` find the package, not this test folder.

    pytest puts ``tests/`` on sys.path (for the root conftest); this folder, named like the package it
    tests and without ``__init__.py``, would then be imported as an empty namespace package.
    """
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    mod = sys.modules.get("cache_builder")
    if mod is not None and getattr(mod, "__file__", None) is None:
        for name in [n for n in sys.modules if n == "cache_builder" or n.startswith("cache_builder.")]:
            del sys.modules[name]


_import_real_package()

from cache_builder.config import CacheConfig  # noqa: E402
from vrl.config import parse  # noqa: E402

#: name → (lavfi source, extra ffmpeg output args); all tiny so the whole folder stays fast
CLIPS = {
    "h264.mp4": ("testsrc2=size=160x120:rate=25:duration=2", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "ntsc.mp4": (
        "testsrc2=size=176x144:rate=30000/1001:duration=2",
        ["-c:v", "libx264", "-pix_fmt", "yuv420p"],
    ),
    "odd444.mp4": (
        "mandelbrot=size=160x96:rate=24",
        ["-t", "1.5", "-vf", "scale=161:97", "-c:v", "libx264", "-pix_fmt", "yuv444p"],
    ),
    "vp9.webm": (
        "testsrc2=size=128x96:rate=20:duration=2",
        ["-c:v", "libvpx-vp9", "-b:v", "100k", "-deadline", "realtime"],
    ),
    "mpeg4.avi": ("testsrc2=size=120x90:rate=15:duration=2", ["-c:v", "mpeg4"]),
    "four.mp4": ("testsrc2=size=96x64:rate=10", ["-frames:v", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    "vfr.mkv": (
        "testsrc2=size=128x96:rate=30:duration=2",
        [
            "-vf",
            "setpts='N/30/TB+if(gt(N,20),0.3/TB,0)'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
    ),
    "moving.mp4": (
        "color=c=navy:size=192x108:rate=25:duration=2[bg];color=c=yellow:size=24x24:rate=25[fg];"
        "[bg][fg]overlay=x='mod(t*80,170)':y='mod(t*40,90)':shortest=1",
        ["-c:v", "libx264", "-pix_fmt", "yuv420p"],
    ),
}


#: clips that need more than one lavfi source: name → full ffmpeg input/output arguments
EXTRA_CLIPS = {
    "rotated.mp4": ["-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25:duration=2", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-metadata:s:v:0", "rotate=90"],
    "audio_first.mp4": ["-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-f", "lavfi", "-i",
                        "testsrc2=size=128x96:rate=25:duration=2", "-map", "0:a", "-map", "1:v", "-c:v", "libx264",
                        "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "bframes.mp4": ["-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25:duration=2", "-c:v", "libx264", "-bf", "3",
                    "-g", "12", "-pix_fmt", "yuv420p"],
    # an IDR every 20 frames: sparse sampling leaves whole GOPs undecoded
    "gops.mp4": ["-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25:duration=6", "-c:v", "libx264", "-bf", "2",
                 "-g", "20", "-keyint_min", "20", "-sc_threshold", "0", "-pix_fmt", "yuv420p"],
    # HEVC, closed GOPs (IDR) and open GOPs (CRA keyframes, which are not restart points)
    "hevc.mp4": ["-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25:duration=4", "-c:v", "libx265",
                 "-x265-params", "keyint=20:min-keyint=20:open-gop=0:log-level=error", "-pix_fmt", "yuv420p"],
    "hevc_open.mp4": ["-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25:duration=4", "-c:v", "libx265",
                      "-x265-params", "keyint=20:min-keyint=20:open-gop=1:log-level=error", "-pix_fmt", "yuv420p"],
}  # fmt: skip


def make_clip(folder: Path, name: str) -> Path:
    out = folder / name
    if out.exists():
        return out
    if name in EXTRA_CLIPS:
        cmd = ["ffmpeg", "-v", "error", "-y", *EXTRA_CLIPS[name], str(out)]
    else:
        source, args = CLIPS[name]
        cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, *args, str(out)]
        if ";" in source:  # a filtergraph of several sources
            cmd = ["ffmpeg", "-v", "error", "-y", "-filter_complex", source, *args, str(out)]
    subprocess.run(cmd, check=True)
    return out


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """A folder with every clip of CLIPS, an image, and the faulty inputs of the fault tests."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required (apt-get install -y ffmpeg)")
    d = tmp_path_factory.mktemp("media")
    for name in [*CLIPS, *EXTRA_CLIPS]:
        make_clip(d, name)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=150x100",
            "-frames:v",
            "1",
            str(d / "pic.png"),
        ],
        check=True,
    )
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=90x60", "-frames:v", "1", "-vf", "format=rgba",
         str(d / "alpha.png")],
        check=True,
    )  # fmt: skip
    (d / "sub").mkdir()
    shutil.copy(d / "h264.mp4", d / "sub" / "same_as_h264.mp4")
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("this is not a video\n" * 20)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25:duration=2",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(d / "faststart.mp4")],
        check=True,
    )  # fmt: skip
    data = (d / "faststart.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (d / "cut_index.mp4").write_bytes((d / "ntsc.mp4").read_bytes()[:4000])  # moov (written last) lost
    mdat = data.find(b"mdat") + 100
    noise = random.Random(0).randbytes(len(data) - mdat - 100)
    (d / "corrupt.mp4").write_bytes(data[:mdat] + noise + data[-100:])
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:size=402x2:rate=10:duration=1",
         "-c:v", "libx264", "-pix_fmt", "yuv444p", str(d / "thin.mp4")],
        check=True,
    )  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "1",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(d / "oneframe.mp4")],
        check=True,
    )  # fmt: skip
    return d


GOOD = ["h264.mp4", "ntsc.mp4", "odd444.mp4", "vp9.webm", "mpeg4.avi", "four.mp4", "vfr.mkv", "moving.mp4"]
FAULTY = {
    "missing.mp4": "missing",
    "empty.mp4": "empty_file",
    "notes.mp4": "not_video",
    "truncated.mp4": "truncated",
    "cut_index.mp4": "truncated",
    "corrupt.mp4": "decode_failed",
    "thin.mp4": "aspect_ratio",
    "oneframe.mp4": "too_short",
}


def write_records(path: Path, videos: list[str], images: list[str] = (), jsonl: bool = False) -> Path:
    records = [{"problem_id": i, "path": v, "data_type": "video"} for i, v in enumerate(videos)]
    records += [{"problem_id": 100 + i, "path": p, "data_type": "image"} for i, p in enumerate(images)]
    if jsonl:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        path.write_text(json.dumps(records))
    return path


def cache_config(**kv) -> CacheConfig:
    """A CacheConfig through the real parser (``key=value`` strings), progress bars off."""
    args = [f"{k}={v}" for k, v in {"progress": "false", **kv}.items()]
    cfg, _ = parse(CacheConfig, args)
    return cfg
