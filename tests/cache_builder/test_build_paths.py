"""A build refuses record paths that leave video_root (``../``, absolute, symlink) and records them in
failures.jsonl as ``outside_root``, unless allow_outside_root=true; the check itself in resolve_inside."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import cache_config, write_records

from cache_builder.build import build_local
from cache_builder.errors import MediaError
from cache_builder.records import resolve_inside


@pytest.fixture
def layout(media_dir, tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    shutil.copy(media_dir / "h264.mp4", root / "h264.mp4")
    shutil.copy(media_dir / "vp9.webm", outside / "x.webm")
    os.symlink(outside / "x.webm", root / "link.webm")
    return tmp_path


def escapes(layout) -> list[str]:
    return ["../outside/x.webm", str(layout / "outside" / "x.webm"), "link.webm"]


def test_build_records_paths_outside_the_root_as_failures(layout):
    recs = write_records(layout / "r.json", ["h264.mp4", *escapes(layout)])
    out = layout / "cache"
    summary = build_local(cache_config(input=recs, video_root=layout / "root", out=out, num_frames=4))
    assert (summary["stored"], summary["failed"]) == (1, 3)
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(f["path"] for f in failures) == sorted(escapes(layout))
    for f in failures:
        assert f["reason"] == "outside_root" and "allow_outside_root=true" in f["message"]


def test_allow_outside_root_builds_them(layout):
    recs = write_records(layout / "r.json", ["h264.mp4", *escapes(layout)])
    cfg = cache_config(
        input=recs, video_root=layout / "root", out=layout / "cache", num_frames=4, allow_outside_root="true"
    )
    summary = build_local(cfg)
    assert (summary["stored"], summary["skipped"], summary["failed"]) == (2, 2, 0)  # one content, 3 paths


def test_resolve_inside(layout):
    root = layout / "root"
    assert resolve_inside("h264.mp4", root) == (root / "h264.mp4").resolve()
    assert resolve_inside("a/../h264.mp4", root) == (root / "h264.mp4").resolve()
    assert resolve_inside(f"file://{root}/h264.mp4", root) == (root / "h264.mp4").resolve()
    assert resolve_inside("not/yet/there.mp4", root) == root.resolve() / "not/yet/there.mp4"
    for path in [*escapes(layout), "../root2/x.mp4", "/etc/passwd"]:
        with pytest.raises(MediaError, match="outside the media root") as err:
            resolve_inside(path, root)
        assert err.value.reason == "outside_root"
    assert resolve_inside("../outside/x.webm", root, allow_outside_root=True) == root / "../outside/x.webm"
    # no root: nothing to stay inside (paths relative to the working directory, as before)
    assert resolve_inside("/etc/passwd", None) == resolve_inside("/etc/passwd", "", allow_outside_root=True)
    # a root that is itself a symlink is resolved first
    os.symlink(root, layout / "root_link")
    assert resolve_inside("h264.mp4", layout / "root_link") == (root / "h264.mp4").resolve()
