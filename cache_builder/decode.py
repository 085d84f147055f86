"""Decode only the selected frames of a video in a child process and resize them like qwen-vl-utils.

Two decoders probe videos and deliver the same frames (raw ``rgb24``); :data:`DECODERS` names them.

- ``libav`` (default): a persistent PyAV server process (:mod:`cache_builder.decode_worker`), one per
  process that decodes, reused from video to video, which also probes (no ffprobe process per video).
  It skips decoding the unselected frames no other frame references, a third to a half of an H.264
  stream with B-frames.
- ``ffmpeg``: ffprobe, then the ffmpeg CLI per video with a ``select`` filter on frame numbers (``-fps_mode
  passthrough`` stops it duplicating or dropping frames, ``-noautorotate`` keeps the coded orientation
  as decord does).

Both give frames equal to decord's (the parity tests run both). A reader thread takes frames off the
pipe while this thread resizes the previous one, so decoding (child) and resizing (here) use two cores
and a long video is never held in memory at full resolution. A watchdog kills a hung decoder after
``timeout_s``: decoders run in child processes so that they can be killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import ffmpeg
import numpy as np

from cache_builder import lifetime
from cache_builder.errors import MediaError
from cache_builder.probe import VideoInfo, probe, probe_failure, video_info
from cache_builder.sampling import resize_frame_hwc

#: the libav server's message header: tag, payload length (decode_worker.HEADER; the server is run by
#: path and cannot import this package, so the format is written in both places and tested equal)
HEADER = struct.Struct("<cQ")

#: decoded frames waiting to be resized (bounded memory: a few H × W × 3 bytes)
QUEUE_FRAMES = 4


class DecodeJob(Protocol):
    """One video's selected frames from a decoder child process."""

    def frames(self) -> Iterator[np.ndarray]:
        """uint8 (H, W, 3) frames in index order; raises :class:`MediaError` when the decoder fails."""
        ...

    def kill(self) -> None:
        """Stop the decoder now (the watchdog calls this from another thread)."""
        ...

    def close(self) -> None:
        """Release the decoder (after :meth:`frames` ended, or early)."""
        ...


def _drain(stream, sink: list[bytes], limit: int = 65536) -> None:
    """Keep the tail of a decoder's stderr without letting the pipe fill up and block it."""
    size = 0
    for chunk in iter(lambda: stream.read(4096), b""):
        sink.append(chunk)
        size += len(chunk)
        while size > limit and len(sink) > 1:
            size -= len(sink.pop(0))


def _last_line(err: list[bytes], default: str) -> str:
    tail = b"".join(err).decode(errors="replace").strip().splitlines()
    return tail[-1] if tail else default


def _read_into(stream, buffer: np.ndarray | bytearray) -> bool:
    """Fill ``buffer`` from the pipe; False when the stream ends first."""
    view = memoryview(buffer).cast("B")
    pos = 0
    while pos < len(view):
        n = stream.readinto(view[pos:])
        if not n:
            return False
        pos += n
    return True


# -- ffmpeg CLI ------------------------------------------------------------------------------------------


def select_expr(indices: list[int]) -> str:
    """An ffmpeg ``select`` expression true on exactly ``indices`` (no commas, so no filter escaping).

    The sum is nested as a balanced tree: ffmpeg's expression parser recurses once per ``+`` of a flat
    chain and fails from 100 terms on (the filter then passes no frame at all), while qwen-vl-utils
    samples up to 768 frames.
    """

    def tree(terms: list[str]) -> str:
        if len(terms) == 1:
            return terms[0]
        half = len(terms) // 2
        return f"({tree(terms[:half])}+{tree(terms[half:])})"

    return tree([f"not(n-{i})" for i in sorted(set(indices))])


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


class FfmpegJob:
    """``ffmpeg -vf select=...`` for one video (``threads=0``: ffmpeg decides)."""

    def __init__(self, path: str | Path, info: VideoInfo, indices: list[int], threads: int) -> None:
        self.info, self.count = info, len(indices)
        self.proc = subprocess.Popen(
            ffmpeg_command(path, info, indices, threads),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lifetime.preexec(),  # killed with this thread, which reads its frames until it ends
        )
        self.err: list[bytes] = []
        self.drain = threading.Thread(target=_drain, args=(self.proc.stderr, self.err), daemon=True)
        self.drain.start()

    def frames(self) -> Iterator[np.ndarray]:
        got = 0
        for _ in range(self.count):
            frame = np.empty((self.info.height, self.info.width, 3), dtype=np.uint8)
            if not _read_into(self.proc.stdout, frame):
                break
            got += 1
            yield frame
        self.proc.stdout.read()  # let ffmpeg finish (nothing more is expected)
        self.proc.wait()
        self.drain.join(timeout=5)
        if got < self.count:
            detail = _last_line(self.err, f"exit {self.proc.returncode}")
            reason = "decode_failed" if self.proc.returncode != 0 else "decode_short"
            raise MediaError(reason, f"ffmpeg delivered {got}/{self.count} selected frames: {detail}")

    def kill(self) -> None:
        self.proc.kill()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.drain.join(timeout=5)


# -- libav server ----------------------------------------------------------------------------------------


class LibavServer:
    """A running :mod:`cache_builder.decode_worker` process."""

    def __init__(self) -> None:
        # by path, not ``-m``: the package's __init__ would import torch into the server
        worker = Path(__file__).with_name("decode_worker.py")
        self.proc = subprocess.Popen(
            [sys.executable, str(worker), str(os.getpid())],  # the server exits when this process ends
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.err: list[bytes] = []
        threading.Thread(target=_drain, args=(self.proc.stderr, self.err), daemon=True).start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, req: dict) -> None:
        try:
            self.proc.stdin.write(json.dumps(req).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as e:  # it died while idle (killed from outside, out of memory)
            raise MediaError("decode_failed", f"libav decoder exited: {_last_line(self.err, str(e))}") from e

    def message(self, frame: np.ndarray | None = None) -> tuple[bytes, bytes | np.ndarray]:
        """The next reply: ``F`` read straight into ``frame`` (when its size matches), else bytes."""
        header = bytearray(HEADER.size)
        if not _read_into(self.proc.stdout, header):
            raise MediaError("decode_failed", f"libav decoder exited: {_last_line(self.err, 'no message')}")
        tag, size = HEADER.unpack(header)
        body = frame if tag == b"F" and frame is not None and frame.nbytes == size else bytearray(size)
        if not _read_into(self.proc.stdout, body):
            raise MediaError("decode_failed", f"libav decoder exited: {_last_line(self.err, 'cut message')}")
        return tag, body

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()

    def stop(self) -> None:
        """Let the server exit (closing stdin ends its loop)."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()


class ServerPool:
    """Idle decoding servers of this process: reused across videos, never shared by two decodes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[LibavServer] = []
        self.pid = os.getpid()

    def acquire(self) -> LibavServer:
        with self.lock:
            if self.pid != os.getpid():  # a forked child: the servers belong to the parent
                self.idle, self.pid = [], os.getpid()
            while self.idle:
                server = self.idle.pop()
                if server.alive():
                    return server
        return LibavServer()

    def release(self, server: LibavServer) -> None:
        with self.lock:
            if server.alive() and self.pid == os.getpid():
                self.idle.append(server)

    def shutdown(self) -> None:
        with self.lock:
            servers, self.idle = self.idle, []
        for server in servers:
            server.stop()


SERVERS = ServerPool()


class LibavJob:
    """One request to a libav server (``threads=0``: one decoding thread, the resize gets the other core)."""

    def __init__(self, path: str | Path, info: VideoInfo, indices: list[int], threads: int) -> None:
        self.info, self.count = info, len(indices)
        self.server = SERVERS.acquire()
        self.done = False
        req = {"path": str(path), "stream": info.stream_index, "indices": indices, "threads": max(threads, 1)}
        self.server.request({"op": "decode", **req})

    def frames(self) -> Iterator[np.ndarray]:
        got = 0
        while True:
            frame = np.empty((self.info.height, self.info.width, 3), dtype=np.uint8)
            tag, body = self.server.message(frame)
            if tag == b"F":
                if body is not frame:
                    raise MediaError("decode_failed", f"frame of {len(body)} bytes, expected {frame.nbytes}")
                got += 1
                yield frame
                continue
            self.done = tag == b"E"
            status = json.loads(bytes(body)) if self.done else {"error": f"unexpected message {tag!r}"}
            if status.get("error"):
                raise MediaError("decode_failed", f"libav: {status['error']} after {got}/{self.count} frames")
            if got < self.count:
                raise MediaError("decode_short", f"libav delivered {got}/{self.count} selected frames")
            return

    def kill(self) -> None:
        self.server.kill()

    def close(self) -> None:
        if self.done:  # the reply was read to its end: the server can take the next video
            SERVERS.release(self.server)
        else:  # stopped mid-reply (error, timeout, early exit): its pipe holds leftovers
            self.server.kill()
            self.server.proc.wait()


def _watchdog(timeout_s: float, kill: Callable[[], None]) -> tuple[threading.Timer, threading.Event]:
    """A started timer that calls ``kill`` after ``timeout_s`` and sets the returned event first."""
    timed_out = threading.Event()

    def _fire() -> None:
        timed_out.set()
        kill()

    watchdog = threading.Timer(timeout_s, _fire)
    watchdog.daemon = True
    watchdog.start()
    return watchdog, timed_out


def libav_probe(path: str | Path, timeout_s: float = 60.0) -> VideoInfo:
    """:func:`cache_builder.probe.probe`'s answer, from a libav server instead of an ffprobe process."""
    server = SERVERS.acquire()
    watchdog, timed_out = _watchdog(timeout_s, server.kill)
    try:
        server.request({"op": "probe", "path": str(path)})
        tag, body = server.message()
    except MediaError as e:
        if timed_out.is_set():
            raise MediaError("probe_timeout", f"probing took longer than {timeout_s:.0f} s") from e
        raise
    finally:
        watchdog.cancel()
        if timed_out.is_set() or not server.alive():
            server.kill()
        else:
            SERVERS.release(server)
    found = json.loads(bytes(body)) if tag == b"J" else {"error": f"unexpected message {tag!r}"}
    if "error" in found:
        if found["error"] == "no video stream":
            raise MediaError("not_video", "no video stream")
        raise probe_failure([found["error"]], path, "libav cannot open it")
    return video_info(**found)


@dataclass(frozen=True)
class Decoder:
    """How one decoder probes a video and decodes its selected frames."""

    probe: Callable[[str | Path, float], VideoInfo]
    job: Callable[[str | Path, VideoInfo, list[int], int], DecodeJob]
    """(path, info, sorted distinct indices, threads) → a running decode."""


#: decoder name → its prober and decode jobs
DECODERS: dict[str, Decoder] = {
    "libav": Decoder(probe=libav_probe, job=LibavJob),
    "ffmpeg": Decoder(probe=probe, job=FfmpegJob),
}


def get_decoder(name: str) -> Decoder:
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}; choose one of {sorted(DECODERS)}")
    return DECODERS[name]


def decode_frames(
    path: str | Path,
    info: VideoInfo,
    indices: list[int],
    size: tuple[int, int],
    timeout_s: float = 600.0,
    threads: int = 0,
    decoder: str = "libav",
) -> np.ndarray:
    """Selected frames of ``path`` resized to ``size`` → uint8 (T, 3, h, w), T = len(indices).

    ``indices`` may repeat (qwen-vl-utils' linspace can round two positions to one frame on very short
    clips): each distinct frame is decoded once and copied into every position that asks for it.
    """
    make_job = get_decoder(decoder).job
    unique = sorted(set(indices))
    slot = {frame: i for i, frame in enumerate(unique)}
    out = np.empty((len(unique), 3, *size), dtype=np.uint8)
    job = make_job(path, info, unique, threads)
    watchdog, timed_out = _watchdog(timeout_s, job.kill)
    frames: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=QUEUE_FRAMES)
    failure: list[BaseException] = []
    reader = threading.Thread(target=_pump, args=(job, frames, failure), daemon=True)
    reader.start()
    got = 0
    try:
        while (frame := frames.get()) is not None:
            if got < len(out):
                resize_frame_hwc(frame, size, out[got])
            got += 1
        reader.join()
    finally:
        watchdog.cancel()
        if reader.is_alive():  # we stopped early: stop the decoder, unblock a reader on a full queue
            job.kill()
            while reader.is_alive():
                with contextlib.suppress(queue.Empty):
                    frames.get(timeout=0.1)
        job.close()
    if timed_out.is_set():
        raise MediaError("decode_timeout", f"{decoder} decoder killed after {timeout_s:.0f} s ({got} frames)")
    if failure:
        raise failure[0]
    if got != len(unique):
        raise MediaError("decode_short", f"{decoder} delivered {got}/{len(unique)} selected frames")
    return out[[slot[i] for i in indices]] if len(unique) != len(indices) else out


def _pump(job: DecodeJob, frames: queue.Queue, failure: list[BaseException]) -> None:
    """Move frames from the decoder into ``frames`` (None at the end); a decoder error goes to ``failure``."""
    try:
        for frame in job.frames():
            frames.put(frame)
    except (MediaError, OSError, ValueError) as e:  # OSError/ValueError: the pipe closed under a kill
        failure.append(e if isinstance(e, MediaError) else MediaError("decode_failed", str(e)))
    finally:
        frames.put(None)
