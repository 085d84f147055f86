"""Decode only the selected frames of a video with the ffmpeg CLI and resize them like qwen-vl-utils.

Why this shape (measured, see FORMAT.md): ffmpeg's default ``rgb24`` conversion equals decord's; a
``select`` filter on frame numbers keeps only the chosen frames, so the RGB conversion runs on those alone;
``-fps_mode passthrough`` stops ffmpeg duplicating or dropping frames; ``-noautorotate`` keeps the coded
orientation as decord does. Frames stream through a pipe in small batches and are resized as they arrive,
so a long video is never held in memory at full resolution. A watchdog kills a hung ffmpeg after
``timeout_s``.
"""

from __future__ import annotations

import contextlib
import queue
import subprocess
import threading
from pathlib import Path

import ffmpeg
import numpy as np
import torch

from cache_builder.errors import MediaError
from cache_builder.probe import VideoInfo
from cache_builder.sampling import resize_frames

#: frames resized together (bounded memory: batch × H × W × 3 × 4 bytes in float32)
RESIZE_BATCH = 8


def select_expr(indices: list[int]) -> str:
    """An ffmpeg ``select`` expression true on exactly ``indices`` (no commas, so no filter escaping)."""
    return "+".join(f"not(n-{i})" for i in sorted(set(indices)))


def ffmpeg_command(path: str | Path, info: VideoInfo, indices: list[int], threads: int = 0) -> list[str]:
    """The ffmpeg command line writing the selected frames as raw rgb24 to stdout."""
    cmd = (
        ffmpeg.input(str(path), noautorotate=None, threads=threads)
        .output(
            "pipe:",
            map=f"0:{info.stream_index}",
            vf=f"select={select_expr(indices)}",
            format="rawvideo",
            pix_fmt="rgb24",
            fps_mode="passthrough",
            an=None,
            sn=None,
            dn=None,
        )
        .compile()
    )
    return [cmd[0], "-nostdin", "-hide_banner", "-v", "error", *cmd[1:]]


def _drain(stream, sink: list[bytes], limit: int = 65536) -> None:
    """Keep the tail of ffmpeg's stderr without letting the pipe fill up and block it."""
    size = 0
    for chunk in iter(lambda: stream.read(4096), b""):
        sink.append(chunk)
        size += len(chunk)
        while size > limit and len(sink) > 1:
            size -= len(sink.pop(0))


def decode_frames(
    path: str | Path,
    info: VideoInfo,
    indices: list[int],
    size: tuple[int, int],
    timeout_s: float = 600.0,
    threads: int = 0,
) -> np.ndarray:
    """Selected frames of ``path`` resized to ``size`` → uint8 (T, 3, h, w), T = len(indices).

    ``indices`` may repeat (qwen-vl-utils' linspace can round two positions to one frame on very short
    clips): each distinct frame is decoded once and copied into every position that asks for it.
    """
    unique = sorted(set(indices))
    slot = {frame: i for i, frame in enumerate(unique)}
    out = np.empty((len(unique), 3, *size), dtype=np.uint8)
    proc = subprocess.Popen(
        ffmpeg_command(path, info, unique, threads),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    watchdog = threading.Timer(timeout_s, _kill)
    watchdog.daemon = True
    err: list[bytes] = []
    drain = threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True)
    watchdog.start()
    drain.start()
    batches: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=2)
    reader = threading.Thread(
        target=_pipe_reader, args=(proc.stdout, info, len(unique), batches), daemon=True
    )
    reader.start()
    got = 0
    try:
        while (batch := batches.get()) is not None:
            out[got : got + len(batch)] = _resize_batch(batch, size)
            got += len(batch)
        reader.join()
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        while reader.is_alive():  # unblock a reader waiting on a full queue (we stopped early)
            with contextlib.suppress(queue.Empty):
                batches.get(timeout=0.1)
        drain.join(timeout=5)
    if got < len(unique):
        tail = b"".join(err).decode(errors="replace").strip().splitlines()
        detail = tail[-1] if tail else f"exit {proc.returncode}"
        if timed_out.is_set():
            raise MediaError(
                "decode_timeout", f"ffmpeg killed after {timeout_s:.0f} s ({got}/{len(unique)} frames)"
            )
        if proc.returncode != 0:
            raise MediaError("decode_failed", f"ffmpeg failed after {got}/{len(unique)} frames: {detail}")
        raise MediaError("decode_short", f"ffmpeg delivered {got}/{len(unique)} selected frames ({detail})")
    return out[[slot[i] for i in indices]] if len(unique) != len(indices) else out


def _pipe_reader(stream, info: VideoInfo, count: int, batches: queue.Queue) -> None:
    """Move raw frames from ffmpeg's stdout into ``batches`` (None at the end).

    A thread, so that ffmpeg decodes the next frames while the previous batch is being resized: a
    720p frame is far bigger than the pipe buffer, so without it decoding and resizing would alternate.
    """
    try:
        remaining = count
        while remaining:
            batch = np.empty((min(RESIZE_BATCH, remaining), info.height, info.width, 3), dtype=np.uint8)
            filled = _read_frames(stream, batch)
            if filled:
                batches.put(batch[:filled])
            remaining -= filled
            if filled < len(batch):
                break
        stream.read()  # let ffmpeg finish (nothing more is expected)
    finally:
        batches.put(None)


def _read_frames(stream, frames: np.ndarray) -> int:
    """Fill ``frames`` (k, H, W, 3) from the pipe; return how many whole frames arrived before EOF."""
    view = memoryview(frames.reshape(-1))
    pos = 0
    while pos < len(view):
        n = stream.readinto(view[pos:])
        if not n:
            break
        pos += n
    return pos // (frames[0].size if len(frames) else 1)


def _resize_batch(hwc: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (k, H, W, 3) → uint8 (k, 3, h, w)."""
    return resize_frames(torch.from_numpy(hwc).permute(0, 3, 1, 2), size).numpy()
