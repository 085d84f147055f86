"""Every read checks the entry's checksum: a flipped byte in a shard raises CorruptEntryError naming the
entry and the shard, whatever the compression and whether the damage hits the frames or the metadata."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest
from conftest import cache_config, write_records

from cache_builder import CorruptEntryError, VideoSpec, open_cache
from cache_builder.build import build_local
from cache_builder.errors import MediaError
from cache_builder.verify import verify

SPEC = VideoSpec(fps=2, max_frames=8)


def _build(media_dir, tmp_path, compression: str):
    recs = write_records(tmp_path / "r.json", ["h264.mp4", "vp9.webm"])
    out = tmp_path / "cache"
    build_local(
        cache_config(input=recs, video_root=media_dir, out=out, fps=2, max_frames=8, compression=compression)
    )
    reader = open_cache(out, expected_spec=SPEC, video_root=media_dir)
    loc = reader.find("h264.mp4")
    reader.close()
    return out, loc


def flip_stored_byte(shard, key: str) -> None:
    """Flip one byte of the entry's stored frame data on disk (bit rot: HDF5 itself is not involved)."""
    with h5py.File(shard, "r") as f:
        info = f["entries"][key]["frames"].id.get_chunk_info(0)
    with open(shard, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x5A]))


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_a_flipped_byte_in_a_shard_is_refused_on_read(media_dir, tmp_path, compression):
    out, loc = _build(media_dir, tmp_path, compression)
    flip_stored_byte(loc.shard, loc.key)
    reader = open_cache(out, expected_spec=SPEC, video_root=media_dir)
    with pytest.raises(CorruptEntryError) as err:
        reader.get("h264.mp4")
    assert err.value.key == loc.key and err.value.shard == str(loc.shard)
    assert loc.key in str(err.value) and loc.shard.name in str(err.value)
    # a failed sample for training and evaluation: a MediaError with its own reason
    assert isinstance(err.value, MediaError) and err.value.reason == "corrupt_entry"
    frames, _ = reader.get("vp9.webm")  # the other entries of the shard still read
    assert frames.ndim == 4


def test_changed_frames_and_changed_metadata_are_refused(media_dir, tmp_path):
    out, loc = _build(media_dir, tmp_path, "zstd")
    with h5py.File(loc.shard, "r+") as f:  # rewritten through HDF5: the stored data decompresses fine
        ds = f["entries"][loc.key]["frames"]
        ds[0, 0, 0, 0] = ds[0, 0, 0, 0] ^ 0xFF
    with pytest.raises(CorruptEntryError, match="checksum"):
        open_cache(out, expected_spec=SPEC, video_root=media_dir).get("h264.mp4")
    with h5py.File(loc.shard, "r+") as f:
        ds = f["entries"][loc.key]["frames"]
        ds[0, 0, 0, 0] = ds[0, 0, 0, 0] ^ 0xFF  # frames restored
    open_cache(out, expected_spec=SPEC, video_root=media_dir).get("h264.mp4")
    with h5py.File(loc.shard, "r+") as f:
        g = f["entries"][loc.key]
        meta = json.loads(g.attrs["meta"])
        meta["fps"] = meta["fps"] * 2  # timestamps the model would see
        g.attrs["meta"] = json.dumps(meta, sort_keys=True)
    with pytest.raises(CorruptEntryError, match="checksum"):
        open_cache(out, expected_spec=SPEC, video_root=media_dir).get("h264.mp4")
    rep = verify(out)
    assert not rep.ok and any(loc.key in p and "checksum" in p for p in rep.problems)


def test_entries_written_before_the_read_checksum_are_checked_with_their_frame_sha256(media_dir, tmp_path):
    out, loc = _build(media_dir, tmp_path, "zstd")
    with h5py.File(loc.shard, "r+") as f:
        g = f["entries"][loc.key]
        del g.attrs["checksum"]  # as written by earlier versions
        ds = g["frames"]
        before = ds[()]
        ds[0, 0, 0, 0] = ds[0, 0, 0, 0] ^ 0xFF
    with pytest.raises(CorruptEntryError, match="sha256"):
        open_cache(out, expected_spec=SPEC, video_root=media_dir).get("h264.mp4")
    with h5py.File(loc.shard, "r+") as f:
        f["entries"][loc.key]["frames"][...] = before
    frames, _ = open_cache(out, expected_spec=SPEC, video_root=media_dir).get("h264.mp4")
    assert (frames == before).all()


def test_the_remedy_the_error_names_rebuilds_the_entry(media_dir, tmp_path):
    out, loc = _build(media_dir, tmp_path, "zstd")
    flip_stored_byte(loc.shard, loc.key)
    with pytest.raises(CorruptEntryError, match="delete the shard file and rerun the build") as err:
        open_cache(out, expected_spec=SPEC, video_root=media_dir).get("h264.mp4")
    Path(err.value.shard).unlink()
    _build(media_dir, tmp_path, "zstd")  # the same build again
    assert verify(out).ok
    frames, _ = open_cache(out, expected_spec=SPEC, video_root=media_dir).get("h264.mp4")
    assert frames.ndim == 4
