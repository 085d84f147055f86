"""Task families of the toy suite: the registry and the per-record drawing context.

A family turns a :class:`Draw` (seeded randomness, the record's index within its family, coverage
variant) into an :class:`Item`: a scene plus question, options, answer and a short reasoning. The
families themselves live in :mod:`vrl.toy.families`. Answers are balanced within each family (the j-th
record takes the j-th value of a seeded sequence of permutations) and so is the position of the correct
option, so no answer prior can beat chance.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from vrl.toy.scenes import Scene, ToyObject
from vrl.toy.spec import BACKGROUNDS, ToyConfig

T = TypeVar("T")
LETTERS = "ABCDEFGH"
#: coverage variants cycled through by every ``coverage_every``-th record of a family
VIDEO_COVERAGE = ("29.97", "vfr", "long")
PATTERN_COVERAGE = "pattern"
IMAGE_COVERAGE = ("jpeg",)


@dataclass(frozen=True)
class Item:
    scene: Scene
    problem: str
    answer: str
    """The answer text (the record's solution is ``<answer>{answer}</answer>``)."""
    think: str
    """A short reasoning, used for the offline trajectory (correct unless the teacher is confused)."""
    options: tuple[str, ...] = ()
    offline_answer: str = ""
    """The answer of the offline trajectory where the teacher gets it wrong; empty: ``answer``."""


@dataclass
class Draw:
    """Everything a family may use to draw one record; all randomness comes from ``rng``."""

    cfg: ToyConfig
    family: str
    split: str
    j: int
    """Index of this record among its family's records in this split."""
    rng: random.Random
    coverage: str | None = None
    """Coverage variant (``29.97``, ``vfr``, ``long``, ``pattern``, ``jpeg``) or None."""

    def balanced(self, values: Sequence[T], salt: str) -> T:
        """The j-th value of a seeded concatenation of permutations of ``values``: balanced counts."""
        n = len(values)
        block, pos = divmod(self.j, n)
        perm = random.Random(f"{self.cfg.seed}/{self.split}/{self.family}/{salt}/{block}").sample(range(n), n)
        return values[perm[pos]]

    def frame_size(self, min_side: int = 0) -> tuple[int, int]:
        lo = max(self.cfg.min_side, min_side)
        hi = max(self.cfg.max_side, lo)
        return self.rng.randint(lo, hi), self.rng.randint(lo, hi)

    def background(self, pattern_ok: bool = False) -> str:
        if pattern_ok and self.coverage == PATTERN_COVERAGE:
            return "pattern"
        return self.rng.choice(sorted(BACKGROUNDS))

    def timing(self, min_duration: float = 0.0) -> dict[str, Any]:
        """Scene keyword arguments ``rate``, ``vfr``, ``duration`` (0.5-s grid, at least ``min_duration``)."""
        cfg = self.cfg
        steps = int((cfg.max_duration - cfg.min_duration) / 0.5 + 1e-9)
        duration = max(cfg.min_duration + 0.5 * self.rng.randint(0, steps), min_duration)
        fps = self.rng.choice(cfg.fps_choices)
        rate = str(int(fps)) if float(fps).is_integer() else str(fps)
        vfr = False
        if self.coverage == "29.97":
            rate = "30000/1001"
        elif self.coverage == "vfr":
            whole = [int(f) for f in cfg.fps_choices if float(f).is_integer()]
            rate, vfr = str(self.rng.choice(whole) if whole else 10), True
        elif self.coverage == "long":
            duration = max(cfg.coverage_max_duration, min_duration)
        return {"rate": rate, "vfr": vfr, "duration": round(duration, 3)}

    def seen(self, color: str) -> str:
        """The color the demonstrations' teacher sees for ``color`` (``toy.teacher_confuses``): either one of
        a confused pair with equal odds, from a stream of its own so the scene does not depend on it."""
        partner = self.cfg.confusions().get(color)
        if partner is None:
            return color
        coin = random.Random(f"{self.cfg.seed}/{self.split}/{self.family}/teacher/{self.j}").random()
        return partner if coin < 0.5 else color

    def image_format(self) -> str:
        return "jpg" if self.coverage == "jpeg" else "png"

    def options(self, correct: str, values: Sequence[str]) -> tuple[tuple[str, ...], str]:
        """``("A. x", ...)`` options and the correct one's letter: ``values`` in their own order, or shuffled
        with the correct one at a balanced position (``shuffle_options``)."""
        if not self.cfg.shuffle_options:
            letter = LETTERS[list(values).index(correct)]
            return tuple(f"{LETTERS[i]}. {v}" for i, v in enumerate(values)), letter
        others = [v for v in values if v != correct]
        self.rng.shuffle(others)
        pos = self.balanced(range(len(values)), "position")
        order = [*others[:pos], correct, *others[pos:]]
        return tuple(f"{LETTERS[i]}. {v}" for i, v in enumerate(order)), LETTERS[pos]

    def object_size(self, width: int, height: int, lo: float, hi: float) -> int:
        return max(8, int(min(width, height) * self.rng.uniform(lo, hi)))

    def static_object(
        self, width: int, height: int, shape: str, color: str, size: int, **kw: Any
    ) -> ToyObject:
        x0 = self.rng.randint(0, width - size)
        y0 = self.rng.randint(0, height - size)
        return ToyObject(shape=shape, color=color, size=size, x0=x0, y0=y0, **kw)

    def moving_object(
        self,
        scene_wh: tuple[int, int],
        shape: str,
        color: str,
        size: int,
        direction: str,
        t_last: float,
        **kw: Any,
    ) -> ToyObject:
        """An object crossing a large part of the frame in ``direction``, inside the frame until ``t_last``.

        Speeds are whole pixels per second (so positions at whole seconds are exact).
        """
        width, height = scene_wh
        horizontal = direction in ("left", "right")
        travel = (width if horizontal else height) - size
        span = max(t_last, 1e-6)
        speed = max(1, int(travel * self.rng.uniform(0.5, 0.9) / span))
        while speed > 1 and speed * span > travel:
            speed -= 1
        moved = int(speed * span + 0.999999)
        start = self.rng.randint(0, max(0, travel - moved))
        if direction in ("left", "up"):
            start, speed = travel - start, -speed
        across = self.rng.randint(0, (height if horizontal else width) - size)
        x0, y0 = (start, across) if horizontal else (across, start)
        vx, vy = (speed, 0) if horizontal else (0, speed)
        return ToyObject(shape=shape, color=color, size=size, x0=x0, y0=y0, vx=vx, vy=vy, **kw)


@dataclass(frozen=True)
class Family:
    name: str
    problem_type: str
    data_type: str
    """``video``, ``image``, or ``mixed`` (alternates)."""
    make: Callable[[Draw], Item]
    pattern_ok: bool = False
    """May draw a pattern background in coverage records (the answer does not depend on colors there)."""

    def coverage_variants(self, data_type: str) -> tuple[str, ...]:
        if data_type == "image":
            return IMAGE_COVERAGE
        return (*VIDEO_COVERAGE, PATTERN_COVERAGE) if self.pattern_ok else VIDEO_COVERAGE


_FAMILIES: dict[str, Family] = {}


def register_family(
    name: str, problem_type: str, data_type: str, pattern_ok: bool = False
) -> Callable[[Callable[[Draw], Item]], Callable[[Draw], Item]]:
    """Decorator registering ``fn(draw) -> Item`` as toy family ``name``."""

    def deco(fn: Callable[[Draw], Item]) -> Callable[[Draw], Item]:
        if name in _FAMILIES:
            raise ValueError(f"toy family '{name}' is already registered")
        _FAMILIES[name] = Family(name, problem_type, data_type, fn, pattern_ok)
        return fn

    return deco


def _load() -> None:
    import vrl.toy.families  # noqa: F401  (registers the built-in families)


def family_names() -> list[str]:
    """Registered families in registration order (the round-robin order of a suite)."""
    _load()
    return list(_FAMILIES)


def get_family(name: str) -> Family:
    _load()
    if name not in _FAMILIES:
        raise ValueError(f"Unknown toy family '{name}'. Known families: {', '.join(_FAMILIES)}.")
    return _FAMILIES[name]
