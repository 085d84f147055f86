"""Probe a video once with ffprobe: stream, size, frame count and average frame rate.

The frame count is the number of packets of the video stream (``-count_packets``) and the rate is the
stream's ``avg_frame_rate``: that is what decord reports (it indexes every packet, sorted by pts), and
qwen-vl-utils samples indices against those two numbers. Header ``nb_frames`` is absent for many
containers and is not used, except that a stream holding far fewer packets than its header's duration
implies is reported as truncated rather than cached from its remains.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from cache_builder.errors import MediaError

#: fewer packets than this fraction of what the stream header declares means the file was cut short
TRUNCATED_FRACTION = 0.9


@dataclass(frozen=True)
class VideoInfo:
    """What the build needs to know about a video before decoding it."""

    stream_index: int
    width: int
    height: int
    total_frames: int
    fps: float
    """avg_frame_rate as num/den (a Python float, as decord computes it)."""
    duration: float | None
    """Container duration in seconds, when known."""
    codec: str


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    try:
        num, _, den = text.partition("/")
        return int(num) / int(den or 1) if int(den or 1) else 0.0
    except ValueError:
        return float(Fraction(text))


def _looks_like_mp4(path: str | Path) -> bool:
    """An ISO media file starts with an ``ftyp`` box: then a missing ``moov`` means a cut file."""
    with open(path, "rb") as f:
        return f.read(8)[4:8] == b"ftyp"


def probe(path: str | Path, timeout_s: float = 60.0) -> VideoInfo:
    """ffprobe ``path``; raises :class:`MediaError` (reason ``not_video``/``probe_timeout``/...)."""
    cmd = [
        "ffprobe", "-v", "error", "-count_packets", "-of", "json",
        "-show_entries",
        "stream=index,codec_type,codec_name,width,height,avg_frame_rate,nb_read_packets,duration"
        ":stream_disposition=attached_pic:format=duration",
        str(path),
    ]  # fmt: skip
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as e:
        raise MediaError("probe_timeout", f"ffprobe took longer than {timeout_s:.0f} s") from e
    if res.returncode != 0:
        msg = res.stderr.decode(errors="replace").strip().splitlines()
        if any("moov atom not found" in line for line in msg) and _looks_like_mp4(path):
            raise MediaError("truncated", "mp4 index (moov atom) missing: file truncated or corrupt")
        raise MediaError("not_video", f"ffprobe failed: {msg[-1] if msg else 'exit ' + str(res.returncode)}")
    data = json.loads(res.stdout or b"{}")
    streams = [
        s
        for s in data.get("streams", [])
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic", 0)
    ]
    if not streams:
        raise MediaError("not_video", "no video stream")
    s = streams[0]
    width, height = int(s.get("width") or 0), int(s.get("height") or 0)
    if width <= 0 or height <= 0:
        raise MediaError("bad_metadata", f"video stream has no size ({width}x{height})")
    duration = data.get("format", {}).get("duration")
    total, fps = int(s.get("nb_read_packets") or 0), _rate(s.get("avg_frame_rate"))
    declared = float(s["duration"]) * fps if s.get("duration") not in (None, "N/A") else None
    if declared is not None and total < TRUNCATED_FRACTION * declared - 2:
        raise MediaError("truncated", f"{total} frames present, the header declares ~{declared:.0f}")
    return VideoInfo(
        stream_index=int(s["index"]),
        width=width,
        height=height,
        total_frames=total,
        fps=fps,
        duration=float(duration) if duration not in (None, "N/A") else None,
        codec=str(s.get("codec_name", "")),
    )
