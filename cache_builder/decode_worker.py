"""The libav decoding server: a child process that decodes selected frames of videos via PyAV.

Run as ``python cache_builder/decode_worker.py`` (by path: importing the package would pull in torch) by
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

import json
import struct
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

import av
import numpy as np

#: message header: tag, payload length (cache_builder.decode.HEADER reads it)
HEADER = struct.Struct("<cQ")


def _display_numbers(path: str, stream_index: int) -> dict[int, int] | None:
    """pts → display number (rank among the stream's packets), or None when timestamps cannot number
    the frames. A demux pass without decoding; packets are not kept (a long video's would fill memory)."""
    with av.open(path) as container:
        stamps = [
            p.pts for p in container.demux(container.streams[stream_index]) if p.size or p.pts is not None
        ]
    if any(s is None for s in stamps) or len(set(stamps)) != len(stamps):
        return None
    return {s: i for i, s in enumerate(sorted(stamps))}


def selected_frames(
    path: str, stream_index: int, indices: list[int], threads: int = 1, stats: dict[str, int] | None = None
) -> Iterator[np.ndarray]:
    """Yield the frames ``indices`` (sorted, distinct) of stream ``stream_index`` as uint8 (H, W, 3).

    ``stats``, when given, receives ``packets`` (sent to the decoder) and ``decoded`` (frames it returned).
    """
    stats = {} if stats is None else stats
    stats.update(packets=0, decoded=0)
    wanted = set(indices)
    number = _display_numbers(path, stream_index)
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

        for packet in container.demux(stream):
            if not packet.size and packet.pts is None:
                continue  # the demuxer's end-of-stream marker: flushed below
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
    except Exception as e:  # a bad file (libav, numpy or I/O error) must not stop the server: report it
        error = f"{type(e).__name__}: {e}"
    send(out, b"E", json.dumps({"error": error, **stats}).encode())


def probe(path: str) -> dict[str, Any]:
    """What :func:`cache_builder.probe.video_info` takes, as ffprobe ``-count_packets`` reports it: the
    first video stream that is not cover art, its packet count (a demux pass, no decoding), average
    frame rate, header duration, the container's duration (both rounded to ffprobe's 6 decimals)."""
    av.logging.set_level(av.logging.ERROR)  # the exception then carries libav's last message
    try:
        container = av.open(path)
    except Exception as e:
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
            except Exception as e:  # e.g. a demux error past the header
                info = {"error": f"{type(e).__name__}: {e}"}
            send(out, b"J", json.dumps(info).encode())
        else:
            send(out, b"E", json.dumps({"error": f"unknown op {req['op']!r}"}).encode())
        out.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
