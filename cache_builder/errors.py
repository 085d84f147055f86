"""Per-input failures: a reason code for ``failures.jsonl`` (or a failed sample) plus a human message."""

from __future__ import annotations

from pathlib import Path

#: every reason a build records or a sample fails with, so reports and tests can rely on the vocabulary
REASONS = (
    "missing",  # the file does not exist
    "empty_file",  # zero bytes
    "unreadable",  # the operating system refused to read it
    "not_video",  # ffprobe cannot read it or it has no video stream
    "not_image",  # PIL cannot read it
    "truncated",  # the container index is missing or the stream ends long before its declared duration
    "bad_metadata",  # no frame rate / size
    "too_short",  # fewer frames than the spec needs
    "aspect_ratio",  # longer side / shorter side > 200
    "decode_failed",  # ffmpeg exited with an error
    "decode_short",  # ffmpeg delivered fewer frames than selected (truncated or corrupt stream)
    "decode_timeout",  # the per-video timeout killed ffmpeg
    "probe_timeout",  # ffprobe hung
    "outside_root",  # the path resolves outside video_root / media_root (allow_outside_root=false)
    "corrupt_entry",  # reads only: a cache entry failed its checksum or could not be read back
)


class MediaError(ValueError):
    """An input that cannot become a cache entry; the build records it and goes on."""

    def __init__(self, reason: str, message: str):
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason


class CorruptEntryError(MediaError):
    """A cache entry whose stored bytes fail their checksum or cannot be read back (bit rot, a damaged or
    altered shard). A :class:`MediaError` so that training and evaluation count the sample as failed
    (reason ``corrupt_entry``) instead of using the frames; ``video_source=prefer_cache`` decodes it again."""

    def __init__(self, key: str, shard: str | Path, detail: str):
        super().__init__(
            "corrupt_entry",
            f"cache entry {key} in shard {shard} is corrupt: {detail}. Check the cache with "
            "`python -m cache_builder verify out=<cache folder>`; delete the shard file and rerun the build "
            "(same input and num_shards) to rebuild its entries",
        )
        self.key = key
        self.shard = str(shard)
