"""What a toy suite is made of: its configuration and the small fixed vocabulary of its scenes.

The vocabulary is deliberately tiny (6 colors, 3 shapes, 4 directions, plain dark backgrounds, objects a
third of the frame) so a tiny model can learn the tasks from pixels within minutes of RL on CPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

#: bump when generated content changes for the same config (part of the suite's content hash)
GENERATOR_VERSION = 2

#: object colors, exact RGB (saturated, far apart in hue)
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
}
SHAPES = ("square", "circle", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
#: plain backgrounds, exact RGB (dark, so every object color stands out)
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "dark gray": (48, 48, 48),
    "gray": (96, 96, 96),
}
#: a pattern background used by a few motion records for coverage (ffmpeg's ``testsrc2``)
PATTERN_BACKGROUND = "pattern"
#: words drawn for OCR: short, upper case, distinct first letters where possible
WORDS = ("CAT", "DOG", "SUN", "BOX", "MAP", "CUP", "HAT", "PEN", "KEY", "FOX", "JAR", "WEB")

#: canonical problem types of the unified record format
PROBLEM_TYPES = (
    "multiple choice",
    "numerical",
    "regression",
    "temporal grounding",
    "spatial grounding",
    "spatial-temporal grounding",
    "tracking",
    "ocr",
    "boolean",
    "open-ended",
    "math",
)


#: where a confused teacher's error enters a demonstration (ToyConfig.teacher_error)
TEACHER_ERRORS = ("perception", "answer")


@dataclass
class ToyConfig:
    seed: int = 0
    """Seed of every random choice; same seed and settings → byte-identical suite."""
    num_train: int = 300
    """Training records (spread round-robin over the task families)."""
    num_val: int = 60
    """Validation records (generated from a different stream than the training records)."""
    families: list[str] = field(default_factory=list)
    """Task families to include (see vrl.toy.tasks); empty: all."""
    val_families: list[str] = field(default_factory=list)
    """Task families of the validation split, a subset of ``families``; empty: the same as ``families``.
    Records are dealt round-robin over a split's families and drawn from the record's index, so two suites
    with the same validation families, ``num_val`` and seed hold identical validation records whatever their
    training families (vrl.trainer.compare_joint validates both arms on the same video records this way)."""
    min_side: int = 64
    """Smallest frame width/height in pixels (odd sizes are drawn too)."""
    max_side: int = 192
    """Largest frame width/height in pixels."""
    fps_choices: list[float] = field(default_factory=lambda: [8.0, 10.0, 12.0])
    """Frame rates of ordinary videos (coverage videos add 29.97 fps and variable frame rate)."""
    min_duration: float = 1.0
    """Shortest ordinary video in seconds (tasks that need time, e.g. counting flashes, may exceed the max)."""
    max_duration: float = 4.0
    """Longest ordinary video in seconds."""
    coverage_every: int = 10
    """Every n-th video record is a coverage video (29.97 fps, variable frame rate or a long clip); 0: none."""
    coverage_max_duration: float = 8.0
    """Duration of the long coverage clips."""
    out: str = ""
    """Suite directory. Empty: $VRL_HOME/toy/toy-<content hash> (shared by every stage that needs it)."""
    num_workers: int = 0
    """Parallel ffmpeg processes; 0: the CPU count, at most 4."""
    shuffle_options: bool = False
    """Multiple-choice options in a random order per record (the correct letter balanced over positions).
    False: every record lists its options in one fixed order (e.g. the colors always as A. red, B. green,
    ...), so the letter names the answer directly. A tiny model learns the visual skill within minutes that
    way, while matching a word to a letter in shuffled options took it thousands of steps (measured)."""

    teacher_confuses: list[str] = field(default_factory=list)
    """Color pairs the demonstrations' teacher cannot tell apart, as ``a/b`` (e.g. ``red/magenta``). Where a
    record's answer rests on one color of a pair, its ``offline_output`` (the warm start's demonstration and
    the offline member of mixed groups) names either color of the pair with equal odds, drawn per record;
    its ``solution`` stays right. The demonstrations then carry no information that separates the pair:
    supervised learning on them cannot, and only the verifiable reward can (vrl.trainer.presets.toy).
    Applies to the families that name an object's color as the answer (``color``, ``color_image``,
    ``boolean``). Empty: a perfect teacher."""
    teacher_error: str = "perception"
    """Where ``teacher_confuses`` enters the demonstrations. ``perception``: the teacher sees the wrong color
    of the pair, and its reasoning and answer follow. ``answer``: the teacher sees and names the right color,
    then writes the option letter of the pair's other color (a slip between reasoning and answer); only the
    multiple-choice color families, the boolean family's demonstrations stay right."""

    def confusions(self) -> dict[str, str]:
        """color → the color the teacher confuses it with (both directions of every pair)."""
        out: dict[str, str] = {}
        for pair in self.teacher_confuses:
            a, sep, b = pair.partition("/")
            if not sep or a not in COLORS or b not in COLORS or a == b:
                raise ValueError(
                    f"toy.teacher_confuses: {pair!r} is not a pair of two colors 'a/b'; colors: {', '.join(COLORS)}"
                )
            if a in out or b in out:
                raise ValueError(f"toy.teacher_confuses: a color is in two pairs ({pair!r})")
            out[a], out[b] = b, a
        return out

    def validate(self) -> None:
        self.confusions()
        if self.teacher_error not in TEACHER_ERRORS:
            raise ValueError(
                f"toy.teacher_error={self.teacher_error!r}: choose from {', '.join(TEACHER_ERRORS)}"
            )
        if self.num_train < 0 or self.num_val < 0 or self.num_train + self.num_val == 0:
            raise ValueError("num_train and num_val must be ≥ 0 and not both 0")
        if not 48 <= self.min_side <= self.max_side:
            raise ValueError(f"need 48 ≤ min_side ≤ max_side, got {self.min_side}, {self.max_side}")
        if not self.fps_choices or any(f <= 0 for f in self.fps_choices):
            raise ValueError(f"fps_choices must be positive frame rates, got {self.fps_choices}")
        if not 0.5 <= self.min_duration <= self.max_duration:
            raise ValueError(
                f"need 0.5 ≤ min_duration ≤ max_duration, got {self.min_duration}, {self.max_duration}"
            )
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be ≥ 0, got {self.num_workers}")
        if self.coverage_every < 0 or self.coverage_max_duration < self.max_duration:
            raise ValueError("coverage_every must be ≥ 0 and coverage_max_duration ≥ max_duration")
        from vrl.toy.tasks import family_names

        unknown = sorted((set(self.families) | set(self.val_families)) - set(family_names()))
        if unknown:
            raise ValueError(f"Unknown toy families {unknown}. Known families: {', '.join(family_names())}.")
        outside = sorted(set(self.val_families) - set(self.families or family_names()))
        if outside:
            raise ValueError(f"toy.val_families {outside} are not among toy.families {self.families}")

    def generation_fields(self) -> dict[str, Any]:
        """The fields that determine the suite's content (everything but where it is written)."""
        skip = ("out", "num_workers")
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(ToyConfig) if f.name not in skip}
        from vrl.toy.tasks import family_names

        # empty means every registered family: name them, so that a new family changes the hash
        data["families"] = sorted(self.families or family_names())
        # absent when unused: the hash of every suite without them stays what it was
        for key in ("val_families", "teacher_confuses"):
            if getattr(self, key):
                data[key] = sorted(getattr(self, key))
            else:
                del data[key]
        if not self.teacher_confuses or self.teacher_error == "perception":
            del data["teacher_error"]
        data["fps_choices"] = [float(f) for f in self.fps_choices]
        return data

    def content_hash(self) -> str:
        """Hash of the generation fields and the generator version: names the default suite directory."""
        blob = json.dumps({**self.generation_fields(), "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]
