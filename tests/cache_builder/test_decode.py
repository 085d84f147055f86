"""Decoders: same frames from every decoder, non-reference frames skipped, hung decoders killed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cache_builder import decode_worker
from cache_builder.config import CacheConfig
from cache_builder.decode import DECODERS, HEADER, SERVERS, decode_frames, libav_probe
from cache_builder.decode_worker import StreamIndex, index_stream, packets_to_decode, selected_frames
from cache_builder.errors import MediaError
from cache_builder.probe import VideoInfo, probe


def test_config_offers_every_decoder():
    from dataclasses import fields

    from vrl.config import parse

    field = next(f for f in fields(CacheConfig) if f.name == "decoder")
    with pytest.raises(ValueError, match="ffmpeg") as err:
        parse(CacheConfig, ["decoder=nope"])
    assert all(name in str(err.value) for name in DECODERS), err.value
    assert field.default in DECODERS


ALL_CLIPS = [
    "h264.mp4", "ntsc.mp4", "odd444.mp4", "vp9.webm", "mpeg4.avi", "four.mp4", "vfr.mkv", "moving.mp4",
    "rotated.mp4", "audio_first.mp4", "bframes.mp4", "gops.mp4", "hevc.mp4", "hevc_open.mp4",
]  # fmt: skip
FAULTS = ["notes.mp4", "truncated.mp4", "cut_index.mp4", "corrupt.mp4", "thin.mp4", "oneframe.mp4"]


@pytest.mark.parametrize("name", ALL_CLIPS)
def test_libav_probe_equals_ffprobe(media_dir, name):
    assert libav_probe(media_dir / name) == probe(media_dir / name)


@pytest.mark.parametrize("name", FAULTS)
def test_libav_probe_fails_like_ffprobe(media_dir, name):
    outcomes = []
    for prober in (libav_probe, probe):
        try:
            outcomes.append(prober(media_dir / name))
        except MediaError as e:
            outcomes.append(e.reason)
    assert outcomes[0] == outcomes[1], outcomes


def test_libav_probe_times_out(tmp_path):
    fifo = tmp_path / "never_written.mp4"
    os.mkfifo(fifo)
    with pytest.raises(MediaError) as err:
        libav_probe(fifo, timeout_s=1.0)
    assert err.value.reason == "probe_timeout"


@pytest.mark.parametrize(
    "name", ["bframes.mp4", "vfr.mkv", "mpeg4.avi", "vp9.webm", "rotated.mp4", "gops.mp4", "hevc_open.mp4"]
)
def test_decoders_give_the_same_frames(media_dir, name):
    info = probe(media_dir / name)
    indices = sorted({0, 3, info.total_frames // 2, info.total_frames - 1})
    got = {
        d: decode_frames(media_dir / name, info, indices, (info.height, info.width), decoder=d)
        for d in DECODERS
    }
    first = got.pop("libav")
    assert first.shape == (len(indices), 3, info.height, info.width)
    for other in got.values():
        np.testing.assert_array_equal(first, other)


def test_unselected_non_reference_frames_are_not_decoded(media_dir):
    """bframes.mp4 has up to 3 B-frames per group: unselected non-reference ones need no decoding."""
    path = str(media_dir / "bframes.mp4")
    info = probe(path)
    everything: dict[str, int] = {}
    all_frames = list(
        selected_frames(path, info.stream_index, list(range(info.total_frames)), stats=everything)
    )
    assert len(all_frames) == everything["decoded"] == info.total_frames
    sparse: dict[str, int] = {}
    picked = [0, 20, info.total_frames - 1]
    frames = list(selected_frames(path, info.stream_index, picked, stats=sparse))
    assert len(frames) == len(picked)
    # the B-frames no other frame references (2 of each 3 with x264's B-pyramid) were never decoded
    assert sparse["decoded"] < 0.7 * info.total_frames, sparse
    for i, frame in zip(picked, frames, strict=True):
        np.testing.assert_array_equal(frame, all_frames[i])


def test_early_frames_stop_the_decode(media_dir):
    path = str(media_dir / "h264.mp4")
    info = probe(path)
    stats: dict[str, int] = {}
    assert len(list(selected_frames(path, info.stream_index, [1, 2], stats=stats))) == 2
    assert stats["packets"] < info.total_frames // 2, stats


@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_hung_decode_is_killed(tmp_path, decoder):
    fifo = tmp_path / "never_written.mp4"
    os.mkfifo(fifo)  # opening it blocks forever
    info = VideoInfo(
        stream_index=0, width=64, height=48, total_frames=10, fps=10.0, duration=1.0, codec="h264"
    )
    with pytest.raises(MediaError) as err:
        decode_frames(fifo, info, [0, 5], (56, 56), timeout_s=1.0, decoder=decoder)
    assert err.value.reason == "decode_timeout"


def test_decoder_errors_are_reported(media_dir, tmp_path):
    broken = tmp_path / "broken.mp4"
    data = (media_dir / "h264.mp4").read_bytes()
    broken.write_bytes(data[: len(data) // 3])  # cut: the index promises frames the file lacks
    info = probe(media_dir / "h264.mp4")
    with pytest.raises(MediaError) as err:
        decode_frames(broken, info, [0, info.total_frames - 1], (56, 56), decoder="libav")
    assert err.value.reason in ("decode_failed", "decode_short"), err.value


def test_unknown_decoder_is_refused(media_dir):
    info = probe(media_dir / "h264.mp4")
    with pytest.raises(ValueError, match="libav"):
        decode_frames(media_dir / "h264.mp4", info, [0], (56, 56), decoder="gstreamer")


def test_message_header_is_the_servers():
    assert HEADER.format == decode_worker.HEADER.format


def test_server_is_reused_and_survives_bad_files(media_dir, tmp_path):
    info = probe(media_dir / "h264.mp4")
    size = (info.height, info.width)
    first = decode_frames(media_dir / "h264.mp4", info, [0, 7], size)
    server = SERVERS.idle[-1]
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError) as err:
        decode_frames(tmp_path / "junk.mp4", info, [0, 7], size)
    assert err.value.reason == "decode_failed"
    again = decode_frames(media_dir / "h264.mp4", info, [0, 7], size)
    np.testing.assert_array_equal(first, again)
    assert SERVERS.idle[-1] is server and server.alive()  # one process served all three requests


def test_a_killed_server_is_replaced(media_dir, tmp_path):
    info = probe(media_dir / "h264.mp4")
    fifo = tmp_path / "hang.mp4"
    os.mkfifo(fifo)
    with pytest.raises(MediaError):
        decode_frames(fifo, info, [0], (info.height, info.width), timeout_s=1.0)
    frames = decode_frames(media_dir / "h264.mp4", info, [0], (info.height, info.width))
    assert frames.shape == (1, 3, info.height, info.width)


def test_packets_between_idrs_after_the_last_selected_frame_are_not_sent():
    # decode order → display numbers of a stream with IDRs at decode positions 0, 4 and 8
    index = StreamIndex(number={}, order=[0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11], restarts=[0, 4, 8])
    send = packets_to_decode(index, wanted={1, 9})
    # GOP 1: up to display 1 (decode position 2); GOP 2: nothing; GOP 3: up to display 9 (position 10)
    assert send == [True, True, True, False, False, False, False, False, True, True, True, False]
    assert packets_to_decode(StreamIndex(number={}, order=[0, 1], restarts=[]), {1}) is None
    assert packets_to_decode(StreamIndex(number=None, order=[], restarts=[]), {1}) is None


@pytest.mark.parametrize(
    ("name", "codec"), [("gops.mp4", "h264"), ("hevc.mp4", "hevc"), ("hevc_open.mp4", "hevc")]
)
def test_idrs_are_found(media_dir, name, codec):
    info = probe(media_dir / name)
    assert info.codec == codec
    restarts = index_stream(str(media_dir / name), info.stream_index).restarts
    if name == "hevc_open.mp4":  # its later keyframes are CRA pictures: only the first is an IDR
        assert restarts == [0]
    else:
        assert restarts == list(range(0, info.total_frames, 20)), restarts


@pytest.mark.parametrize("name", ["gops.mp4", "hevc.mp4"])
def test_gops_without_selected_frames_are_not_decoded(media_dir, name):
    path = str(media_dir / name)
    info = probe(path)
    picked = [3, info.total_frames // 2, info.total_frames - 5]
    skipping: dict[str, int] = {}
    frames = list(selected_frames(path, info.stream_index, picked, stats=skipping))
    full: dict[str, int] = {}
    reference = list(selected_frames(path, info.stream_index, picked, stats=full, skip_gops=False))
    assert skipping["packets"] < full["packets"] / 2, (skipping, full)
    assert len(frames) == len(reference) == len(picked)
    for a, b in zip(frames, reference, strict=True):
        np.testing.assert_array_equal(a, b)


def test_hundreds_of_selected_frames(media_dir):
    """Every frame of a 150-frame clip, from both decoders (ffmpeg's select expression used to fail
    from 100 frames on), equal to a plain sequential decode."""
    import av

    path = media_dir / "gops.mp4"
    info = probe(path)
    with av.open(str(path)) as c:
        plain = [f.to_ndarray(format="rgb24").transpose(2, 0, 1) for f in c.decode(video=0)]
    indices = list(range(info.total_frames))
    for decoder in DECODERS:
        frames = decode_frames(path, info, indices, (info.height, info.width), decoder=decoder)
        np.testing.assert_array_equal(frames, np.stack(plain), err_msg=decoder)


def test_an_idle_server_that_died_is_not_reused(media_dir):
    info = probe(media_dir / "h264.mp4")
    size = (info.height, info.width)
    first = decode_frames(media_dir / "h264.mp4", info, [0, 7], size)
    dead = SERVERS.idle[-1]
    dead.kill()
    dead.proc.wait()
    np.testing.assert_array_equal(decode_frames(media_dir / "h264.mp4", info, [0, 7], size), first)
    assert dead not in SERVERS.idle
    with pytest.raises(MediaError) as err:  # a request to a dead process is a decoder failure
        dead.request({"op": "probe", "path": "x"})
    assert err.value.reason == "decode_failed"
