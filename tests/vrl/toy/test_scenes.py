import pytest

from vrl.toy.scenes import Scene, ToyObject, ToyText, visible_span


def _video(**kw):
    return Scene(kind="video", width=65, height=48, background="black", **kw)


@pytest.mark.parametrize(
    ("rate", "duration", "frames"),
    [("10", 2.0, 20), ("8", 1.5, 12), ("30000/1001", 2.0, 60), ("30000/1001", 1.5, 45), ("10", 3.25, 33)],
)
def test_num_frames_follows_ffmpeg_sources(rate, duration, frames):
    assert _video(rate=rate, duration=duration).num_frames == frames


def test_frame_times_constant_and_variable_rate():
    assert _video(rate="10", duration=0.5).frame_times() == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    assert _video(rate="10", duration=0.5, vfr=True).frame_times() == pytest.approx([0, 0.14, 0.2, 0.34, 0.4])
    assert _video(rate="30000/1001", duration=0.1).frame_times()[1] == pytest.approx(1001 / 30000)


def test_box_and_visibility():
    obj = ToyObject("circle", "red", 10, x0=50, y0=5, vx=-7, vy=3, visible=((0.5, 1.0), (2.0, 2.5)))
    assert obj.box_at(0) == (50, 5, 60, 15)
    assert obj.box_at(1.5) == (39, 9, 49, 19)  # int(50 - 10.5) = 39, int(5 + 4.5) = 9
    assert [obj.visible_at(t) for t in (0.4, 0.5, 1.0, 1.1, 2.5)] == [False, True, True, False, True]
    assert visible_span(obj, [0.0, 0.6, 0.9, 1.5, 2.2]) == (0.6, 2.2)


def test_scene_round_trips_through_json_dict():
    scene = _video(
        rate="12",
        duration=2.0,
        objects=(ToyObject("triangle", "blue", 20, 1, 2, visible=((0.0, 1.0),)),),
        text=ToyText("CAT", 20),
        notes={"count": 1},
    )
    data = scene.to_dict()
    assert data["num_frames"] == 24
    assert Scene.from_dict(data) == scene
    assert _video().whole_seconds() == [0]
