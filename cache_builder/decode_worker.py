"""The libav decoding server: a child process that decodes selected frames of videos via PyAV.

Run as ``python cache_builder/decode_worker.py <parent pid>`` (by path: importing the package would pull in torch) by
:mod:`cache_builder.decode`, which keeps one alive per process and kills it when a decode hangs. Requests
arrive on stdin, one JSON object per line; replies are messages ``tag (1 byte) + length (8 bytes, little
endian) + payload`` on stdout:

- ``{"op": "decode", "path", "stream", "indices", "threads"}`` → one ``F`` message per selected frame
  (raw ``rgb24``, ``H × W × 3`` bytes, in index order), then ``E`` with JSON ``{"error": null | str,
  "packets": n, "decoded": n}``.
- ``{"op": "probe", "path"}`` → ``J`` with JSON: what :func:`cache_builder.probe.video_info` takes, or
  ``{"error": str}``.

What makes decoding cheaper than ``ffmpeg -vf select=...``: frames after the last selected one are
never decoded, and a frame that is neither selected nor a reference for other frames is skipped inside
the decoder (``skip_frame=NONREF`` for that packet alone). Skipping a non-reference frame cannot change
any other frame, so the selected frames are bit-identical; on H.264 with B-frames this removes a third
to a half of the decoding work. The colour conversion is libswscale's default ``rgb24`` one, which equals
decord's and ffmpeg's. A persistent process also saves the interpreter and library start-up per video.

Display numbers come from ranking the packets' presentation timestamps (decord's index). Without usable
timestamps (missing or repeated), frames are numbered in output order with nothing skipped.
"""

from __future__ import annotations

import bisect
import json
import os
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import av
import numpy as np

#: message header: tag, payload length (cache_builder.decode.HEADER reads it)
HEADER = struct.Struct("<cQ")


#: codec → (NAL unit types that start a coded video sequence afresh, NAL type from the header's first byte):
#: H.264 IDR; HEVC IDR_W_RADL and IDR_N_LP. Decoding that starts at one gives every later frame exactly.
IDR_NALS = {
    "h264": ({5}, lambda byte: byte & 0x1F),
    "hevc": ({19, 20}, lambda byte: (byte >> 1) & 0x3F),
}


def _nal_length_size(codec: str, extradata: bytes | None) -> int | None:
    """Bytes of the length prefix of each NAL unit in an avcC/hvcC stream (MP4, MKV); None otherwise."""
    if codec not in IDR_NALS or not extradata or extradata[0] != 1:  # Annex B, or not H.264/HEVC
        return None
    at = 4 if codec == "h264" else 21
    return (extradata[at] & 3) + 1 if len(extradata) > at else None


def _is_idr(data: bytes, length_size: int, codec: str) -> bool:
    types, nal_type = IDR_NALS[codec]
    pos = 0
    while pos + length_size < len(data):
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size <= 0 or pos + size > len(data):
            return False
        if nal_type(data[pos]) in types:
            return True
        pos += size
    return False


@dataclass
class StreamIndex:
    """What one demux pass (no decoding) tells about a video stream. Packets are not kept: a long
    video's would fill memory."""

    number: dict[int, int] | None
    """pts → display number (rank among the stream's packets); None when timestamps cannot number the
    frames (missing or repeated)."""
    order: list[int]
    """Display number of the packet at each decode position (empty when ``number`` is None)."""
    restarts: list[int]
    """Decode positions of IDR packets (H.264/HEVC in MP4/MKV; empty otherwise)."""


def index_stream(path: str, stream_index: int) -> StreamIndex:
    with av.open(path) as container:
        stream = container.streams[stream_index]
        codec = stream.codec_context.codec.canonical_name
        length_size = _nal_length_size(codec, stream.codec_context.extradata)
        stamps, restarts = [], []
        for packet in container.demux(stream):
            if not packet.size and packet.pts is None:
                continue  # the demuxer's end-of-stream marker
            if length_size and packet.is_keyframe and _is_idr(bytes(packet), length_size, codec):
                restarts.append(len(stamps))
            stamps.append(packet.pts)
    if any(s is None for s in stamps) or len(set(stamps)) != len(stamps):
        return StreamIndex(None, [], [])
    number = {s: i for i, s in enumerate(sorted(stamps))}
    return StreamIndex(number, [number[s] for s in stamps], restarts)


def packets_to_decode(index: StreamIndex, wanted: set[int]) -> list[bool] | None:
    """Per decode position, whether the packet must reach the decoder; None: all of them.

    Between two IDRs only the packets from the first one up to the last selected frame's packet matter
    (a frame only references packets before it in decode order, and none across an IDR); a stretch
    without selected frames is not decoded at all. Sparse sampling of a long video skips most of it.
    """
    if index.number is None or not index.restarts:
        return None
    starts = sorted({0, *index.restarts})
    send = [False] * len(index.order)
    selected = [pos for pos, n in enumerate(index.order) if n in wanted]
    for begin, end in zip(starts, [*starts[1:], len(index.order)], strict=True):
        lo, hi = bisect.bisect_left(selected, begin), bisect.bisect_left(selected, end)
        if hi > lo:
            send[begin : selected[hi - 1] + 1] = [True] * (selected[hi - 1] + 1 - begin)
    return send


def selected_frames(
    path: str,
    stream_index: int,
    indices: list[int],
    threads: int = 1,
    stats: dict[str, int] | None = None,
    skip_gops: bool = True,
) -> Iterator[np.ndarray]:
    """Yield the frames ``indices`` (sorted, distinct) of stream ``stream_index`` as uint8 (H, W, 3).

    ``stats``, when given, receives ``packets`` (sent to the decoder) and ``decoded`` (frames it
    returned). ``skip_gops=False`` sends every packet up to the last selected frame (for tests).
    """
    stats = {} if stats is None else stats
    stats.update(packets=0, decoded=0)
    wanted = set(indices)
    index = index_stream(path, stream_index)
    number = index.number
    send = packets_to_decode(index, wanted) if skip_gops else None
    with av.open(path) as container:
        stream = container.streams[stream_index]
        ctx = stream.codec_context
        ctx.thread_count = max(int(threads), 1)
        ctx.thread_type = "FRAME" if threads > 1 else "NONE"
        counter = 0

        def emit(frames) -> Iterator[np.ndarray]:
            nonlocal counter
            for frame in frames:
                stats["decoded"] += 1
                n = number.get(frame.pts, -1) if number is not None else counter
                counter += 1
                if n in wanted:
                    wanted.discard(n)
                    yield frame.to_ndarray(format="rgb24")

        position, skipping = -1, False
        for packet in container.demux(stream):
            if not packet.size and packet.pts is None:
                continue  # the demuxer's end-of-stream marker: flushed below
            position += 1
            if send is not None and not send[position]:
                if not skipping:  # drain what the decoder holds back, then forget the stream
                    yield from emit(ctx.decode(None))
                    ctx.flush_buffers()
                    skipping = True
                continue
            skipping = False
            stats["packets"] += 1
            if number is not None:
                ctx.skip_frame = "DEFAULT" if number[packet.pts] in wanted else "NONREF"
            yield from emit(ctx.decode(packet))
            if not wanted:
                return
        yield from emit(ctx.decode(None))


def send(out: BinaryIO, tag: bytes, payload: bytes | memoryview) -> None:
    out.write(HEADER.pack(tag, len(payload)))
    out.write(payload)


def _decode(req: dict[str, Any], out: BinaryIO) -> None:
    stats: dict[str, int] = {}
    try:
        for frame in selected_frames(req["path"], req["stream"], req["indices"], req["threads"], stats):
            send(out, b"F", memoryview(np.ascontiguousarray(frame)).cast("B"))
        error = None
    except (av.FFmpegError, OSError, ValueError) as e:  # a bad file must not stop the server: report it
        error = f"{type(e).__name__}: {e}"
    send(out, b"E", json.dumps({"error": error, **stats}).encode())


def probe(path: str) -> dict[str, Any]:
    """What :func:`cache_builder.probe.video_info` takes, as ffprobe ``-count_packets`` reports it: the
    first video stream that is not cover art, its packet count (a demux pass, no decoding), average
    frame rate, header duration, the container's duration (both rounded to ffprobe's 6 decimals)."""
    av.logging.set_level(av.logging.ERROR)  # the exception then carries libav's last message
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, ValueError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        av.logging.set_level(None)
    with container:
        cover = av.stream.Disposition.attached_pic
        streams = [s for s in container.streams.video if not (s.disposition & cover)]
        if not streams:
            return {"error": "no video stream"}
        stream = streams[0]
        packets = sum(1 for p in container.demux(stream) if p.size or p.pts is not None)
        rate = stream.average_rate
        seconds = stream.duration * stream.time_base if stream.duration is not None else None
        return {
            "stream_index": stream.index,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "packets": packets,
            "fps": rate.numerator / rate.denominator if rate else 0.0,
            "stream_duration": round(float(seconds), 6) if seconds is not None else None,
            "duration": round(container.duration / av.time_base, 6) if container.duration else None,
            "codec": stream.codec_context.codec.canonical_name,
        }


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until stdin closes (the parent exited or let the server go)."""
    for line in inp:
        req = json.loads(line)
        if req["op"] == "decode":
            _decode(req, out)
        elif req["op"] == "probe":
            try:
                info = probe(req["path"])
            except (av.FFmpegError, OSError, ValueError) as e:  # e.g. a demux error past the header
                info = {"error": f"{type(e).__name__}: {e}"}
            send(out, b"J", json.dumps(info).encode())
        else:
            send(out, b"E", json.dumps({"error": f"unknown op {req['op']!r}"}).encode())
        out.flush()


def end_with_parent(parent_pid: int, interval_s: float = 0.2) -> None:
    """Exit as soon as ``parent_pid`` is no longer this server's parent (killed, ``kill -9`` included).

    An idle server already ends when its stdin closes; this ends one busy decoding a long video or stuck
    in libav. A thread polling the parent, not ``PR_SET_PDEATHSIG``: the kernel sends that when the
    *thread* that started the server ends, and servers are shared by the threads of their process
    (see :mod:`cache_builder.lifetime`)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


if __name__ == "__main__":
    # the parent passes its pid: a parent that died before this line is caught as well
    end_with_parent(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())
    serve(sys.stdin.buffer, sys.stdout.buffer)
