"""verify(): source hashes, spec presence, completeness against the records; stats()."""

from __future__ import annotations

import shutil

from conftest import cache_config, write_records

from cache_builder.build import build_local
from cache_builder.spec import ImageSpec, VideoSpec
from cache_builder.stats import cache_stats, format_stats
from cache_builder.verify import verify


def test_changed_source_spec_and_completeness(media_dir, tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    for name in ("h264.mp4", "vp9.webm", "empty.mp4"):
        shutil.copy(media_dir / name, root / name)
    recs = write_records(tmp_path / "r.json", ["h264.mp4", "vp9.webm", "empty.mp4"], ["missing.png"])
    out = tmp_path / "cache"
    build_local(cache_config(input=recs, video_root=root, out=out, num_frames=4))
    good = verify(out, video_root=root, input_path=recs, expected=[VideoSpec(num_frames=4), ImageSpec()])
    assert good.ok, good.problems
    assert good.checked == 2
    with open(root / "vp9.webm", "ab") as f:
        f.write(b"\0" * 10)
    rep = verify(out, video_root=root, expected=[VideoSpec(num_frames=6)])
    assert any("vp9.webm: file content changed" in p for p in rep.problems)
    assert any("num_frames: expected 6, stored 4" in p for p in rep.problems)
    stats = cache_stats(out)
    assert stats["entries"] == 2 and stats["frames"] == 8
    assert stats["failures_by_reason"] == {"empty_file": 1, "missing": 1}
    assert "failures         2" in format_stats(stats)
