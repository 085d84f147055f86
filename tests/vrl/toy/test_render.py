import subprocess

import pytest

from vrl.toy import render as render_mod
from vrl.toy.render import RenderError, ffmpeg_command, render
from vrl.toy.scenes import Scene, ToyObject, ToyText


def test_vfr_needs_a_whole_nominal_rate():
    scene = Scene("video", 64, 64, "black", rate="30000/1001", vfr=True)
    with pytest.raises(ValueError, match="whole nominal rate"):
        ffmpeg_command(scene, "x.mp4")


def test_missing_font_is_a_clear_error(monkeypatch):
    render_mod.find_font.cache_clear()
    monkeypatch.setattr(render_mod, "_KNOWN_FONTS", ("/nonexistent/font.ttf",))
    monkeypatch.setattr(
        render_mod.shutil, "which", lambda name: None if name == "fc-match" else "/usr/bin/" + name
    )
    try:
        with pytest.raises(RuntimeError, match="fonts-dejavu-core"):
            ffmpeg_command(Scene("image", 64, 64, "black", text=ToyText("CAT", 20)), "x.png")
    finally:
        render_mod.find_font.cache_clear()


def test_odd_size_video_uses_yuv444_and_crops(tmp_path):
    scene = Scene(
        "video", 65, 49, "gray", objects=(ToyObject("square", "red", 20, 1, 2),), rate="8", duration=1.0
    )
    cmd = ffmpeg_command(scene, tmp_path / "v.mp4")
    graph = cmd[cmd.index("-filter_complex") + 1]
    assert "crop=65:49:0:0" in graph and "format=yuv444p" in graph
    render(scene, tmp_path / "v.mp4")
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=width,height,pix_fmt",
            "-of",
            "csv=p=0",
            str(tmp_path / "v.mp4"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert probe == "65,49,yuv444p"
    assert not list(tmp_path.glob(".*.tmp"))


def test_ffmpeg_failure_raises_with_stderr(tmp_path, monkeypatch):
    monkeypatch.setattr(render_mod, "_encoder_args", lambda scene: ["-c:v", "no_such_codec", "-f", "mp4"])
    with pytest.raises(RenderError, match=r"no_such_codec|Unknown encoder"):
        render(Scene("video", 64, 64, "black", rate="8", duration=0.5), tmp_path / "bad.mp4")
    assert not list(tmp_path.iterdir())
