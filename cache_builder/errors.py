"""Per-input failures: a reason code for ``failures.jsonl`` plus a human message."""

from __future__ import annotations

#: every reason a build records, so reports and tests can rely on the vocabulary
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
)


class MediaError(ValueError):
    """An input that cannot become a cache entry; the build records it and goes on."""

    def __init__(self, reason: str, message: str):
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason
