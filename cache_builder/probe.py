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

from cache_builder import lifetime
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
        res = subprocess.run(
            cmd, capture_output=True, timeout=timeout_s, check=False, preexec_fn=lifetime.preexec()
        )
    except subprocess.TimeoutExpired as e:
        raise MediaError("probe_timeout", f"ffprobe took longer than {timeout_s:.0f} s") from e
    if res.returncode != 0:
        raise probe_failure(
            res.stderr.decode(errors="replace").strip().splitlines(), path, f"ffprobe exit {res.returncode}"
        )
    data = json.loads(res.stdout or b"{}")
    streams = [
        s
        for s in data.get("streams", [])
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic", 0)
    ]
    if not streams:
        raise MediaError("not_video", "no video stream")
    s = streams[0]
    return video_info(
        stream_index=int(s["index"]),
        width=int(s.get("width") or 0),
        height=int(s.get("height") or 0),
        packets=int(s.get("nb_read_packets") or 0),
        fps=_rate(s.get("avg_frame_rate")),
        stream_duration=float(s["duration"]) if s.get("duration") not in (None, "N/A") else None,
        duration=float(data["format"]["duration"])
        if data.get("format", {}).get("duration") not in (None, "N/A")
        else None,
        codec=str(s.get("codec_name", "")),
    )


def video_info(
    stream_index: int,
    width: int,
    height: int,
    packets: int,
    fps: float,
    stream_duration: float | None,
    duration: float | None,
    codec: str,
) -> VideoInfo:
    """Check what a prober found (ffprobe here, libav in :mod:`cache_builder.decode`) → :class:`VideoInfo`.

    ``packets`` is the video stream's packet count, ``fps`` its average frame rate, ``stream_duration``
    its header duration (seconds) and ``duration`` the container's.
    """
    if width <= 0 or height <= 0:
        raise MediaError("bad_metadata", f"video stream has no size ({width}x{height})")
    declared = stream_duration * fps if stream_duration is not None else None
    if declared is not None and packets < TRUNCATED_FRACTION * declared - 2:
        raise MediaError("truncated", f"{packets} frames present, the header declares ~{declared:.0f}")
    return VideoInfo(
        stream_index=stream_index,
        width=width,
        height=height,
        total_frames=packets,
        fps=fps,
        duration=duration,
        codec=codec,
    )


def probe_failure(messages: list[str], path: str | Path, default: str) -> MediaError:
    """The error for a file the prober could not open: a cut mp4 is ``truncated``, anything else
    ``not_video``."""
    if any("moov atom not found" in line for line in messages) and _looks_like_mp4(path):
        return MediaError("truncated", "mp4 index (moov atom) missing: file truncated or corrupt")
    return MediaError("not_video", f"cannot open as video: {messages[-1] if messages else default}")
