"""A toy scene (background, moving/flashing objects, drawn words) and its exact ground truth.

The renderer draws a scene with ffmpeg; the functions here compute what it draws, from the same numbers,
so answers are exact rather than measured. Conventions (shared with the records):

- coordinates are pixels of the original frame, origin top left; a box is ``[x1, y1, x2, y2]`` with
  ``x2 = x1 + size`` (edges, so a 30-px square at x=5 spans columns 5..34);
- an object's top-left corner at time ``t`` is ``(int(x0 + vx·t), int(y0 + vy·t))``, as ffmpeg's
  ``overlay`` truncates its position expressions; ``vx``/``vy`` are whole pixels per second, so positions
  at whole seconds are exact;
- ``visible`` intervals are closed, ``[a, b]`` in seconds (ffmpeg ``enable='between(t,a,b)'``); empty
  means always visible;
- frame times: constant rate → ``n / rate``; variable rate (``vfr``) → frame ``n`` at
  ``(10n + 4·(n mod 2)) / (10·rate)``, i.e. alternating long and short frame intervals.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class ToyObject:
    shape: str
    color: str
    size: int
    """Side of the object's bounding square in pixels."""
    x0: int
    y0: int
    vx: int = 0
    """Horizontal speed, pixels per second (negative: moves left)."""
    vy: int = 0
    """Vertical speed, pixels per second (negative: moves up)."""
    visible: tuple[tuple[float, float], ...] = ()
    """Closed time intervals in which the object is drawn; empty: always."""

    def box_at(self, t: float) -> Box:
        x = int(self.x0 + self.vx * t)
        y = int(self.y0 + self.vy * t)
        return (x, y, x + self.size, y + self.size)

    def visible_at(self, t: float) -> bool:
        return not self.visible or any(a <= t <= b for a, b in self.visible)


@dataclass(frozen=True)
class ToyText:
    text: str
    font_size: int
    color: str = "white"
    """``white`` or a name of :data:`vrl.toy.spec.COLORS`."""


@dataclass(frozen=True)
class Scene:
    kind: str
    """``video`` or ``image``."""
    width: int
    height: int
    background: str
    """A name of :data:`vrl.toy.spec.BACKGROUNDS` or ``pattern``."""
    objects: tuple[ToyObject, ...] = ()
    text: ToyText | None = None
    """A word or expression drawn centered."""
    rate: str = "1"
    """Frame rate as ffmpeg writes it (``10``, ``30000/1001``); videos only."""
    vfr: bool = False
    """Variable frame rate (see the module docstring)."""
    duration: float = 1.0
    """Seconds of video (the source duration; frames follow from the rate)."""
    image_format: str = "png"
    """``png`` or ``jpg``; images only."""
    notes: dict[str, Any] = field(default_factory=dict)
    """Task-specific facts kept with the ground truth (e.g. the flash count)."""

    @property
    def fraction_rate(self) -> Fraction:
        return Fraction(self.rate)

    @property
    def num_frames(self) -> int:
        if self.kind == "image":
            return 1
        # ffmpeg's sources stop at the duration rounded to the nearest frame tick
        return math.floor(Fraction(self.duration) * self.fraction_rate + Fraction(1, 2))

    def frame_times(self) -> list[float]:
        """Presentation time of every frame in seconds (what the decoder reports)."""
        if self.kind == "image":
            return [0.0]
        n = self.num_frames
        if self.vfr:
            tick = 1 / (10 * self.fraction_rate)  # the time base the variable-rate timestamps are written in
            return [(10 * i + 4 * (i % 2)) * float(tick) for i in range(n)]
        tick = 1 / self.fraction_rate
        return [i * float(tick) for i in range(n)]

    @property
    def last_time(self) -> float:
        return self.frame_times()[-1]

    def whole_seconds(self) -> list[int]:
        """The whole seconds that have a frame at or after them (``0 .. floor(last frame time)``)."""
        return list(range(math.floor(self.last_time) + 1))

    def to_dict(self) -> dict[str, Any]:
        """JSON form stored with each record (``scene``)."""
        data = asdict(self)
        data["objects"] = [{**asdict(o), "visible": [list(iv) for iv in o.visible]} for o in self.objects]
        data["num_frames"] = self.num_frames
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        data = dict(data)
        data.pop("num_frames", None)
        objects = tuple(
            ToyObject(**{**o, "visible": tuple(tuple(iv) for iv in o["visible"])})
            for o in data.pop("objects")
        )
        text = data.pop("text")
        return cls(objects=objects, text=ToyText(**text) if text else None, **data)


def visible_span(obj: ToyObject, times: list[float]) -> tuple[float, float] | None:
    """First and last frame time at which ``obj`` is drawn, or None."""
    shown = [t for t in times if obj.visible_at(t)]
    return (shown[0], shown[-1]) if shown else None


def inside(box: Box, width: int, height: int) -> bool:
    x1, y1, x2, y2 = box
    return x1 >= 0 and y1 >= 0 and x2 <= width and y2 <= height
