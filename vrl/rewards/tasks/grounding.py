"""Grounding and tracking: 1-D IoU of time spans, 2-D IoU of boxes, per-second box tracks.

Answers are JSON: ``{"time": [s, e]}``, ``{"boxes": [x1, y1, x2, y2]}``, ``{"boxes": {"<second>": box}}``
(temporal spans also as text: "12.5 to 17 seconds", "12.5 - 17", "00:03 - 00:07"). The **last** JSON value
of the right shape in the answer counts (a draft in the reasoning never reaches here, see
:mod:`vrl.rewards.extract`). Times are seconds, or clock times ``mm:ss`` / ``hh:mm:ss`` (fractional
seconds allowed, in JSON strings too: ``["00:03", "00:07.5"]``). Reversed spans and boxes are swapped;
times are used as given (no clipping to the video). Second keys compare as integers ("18" = "18.0").
"""

from __future__ import annotations

import re
from typing import Any

from vrl.rewards.extract import ground_truth
from vrl.rewards.jsonscan import as_number, iter_json, last_json
from vrl.rewards.registry import Verdict, register_reward

Span = tuple[float, float]
Box = tuple[float, float, float, float]

_BOX_KEYS = ("boxes", "box", "bbox", "bbox_2d")
# a time in text: hh:mm:ss, mm:ss (fractional seconds allowed) or plain seconds
_TIME_TOKEN = re.compile(
    r"(?<![\w.])(?<!\d:)"
    r"(?:(?P<h>\d{1,2}):(?P<hm>[0-5]\d):(?P<hs>[0-5]\d(?:\.\d+)?)"
    r"|(?P<m>\d{1,3}):(?P<ms>[0-5]\d(?:\.\d+)?)"
    r"|(?P<s>\d+(?:\.\d+)?))"
    r"(?!\d)(?!\.\d)(?!:\d)"
)
_UNIT_WORDS = re.compile(r"\b(?:s|sec|secs|second|seconds)\b")
_SEPARATORS = {"to", "-", "–", "—", "~", "until", "and", "through", ","}


def iou_1d(a: Span, b: Span) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union <= 0:
        return float(a == b)
    return min(1.0, max(0.0, inter / union))


def iou_2d(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    if not union > 0:
        return float(a == b)
    return min(1.0, max(0.0, inter / union))


def _token_seconds(m: re.Match[str]) -> float:
    if m.group("h") is not None:
        return int(m.group("h")) * 3600 + int(m.group("hm")) * 60 + float(m.group("hs"))
    if m.group("m") is not None:
        return int(m.group("m")) * 60 + float(m.group("ms"))
    return float(m.group("s"))


def as_seconds(value: Any) -> float | None:
    """A time in seconds from a JSON number, a numeric string or a clock string (``"01:02.5"``)."""
    if isinstance(value, str) and ":" in value and len(value) <= 32:
        m = _TIME_TOKEN.fullmatch(value.strip())
        return _token_seconds(m) if m is not None else None
    return as_number(value)


def as_span(value: Any) -> Span | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    s, e = as_seconds(value[0]), as_seconds(value[1])
    if s is None or e is None:
        return None
    return (min(s, e), max(s, e))


def as_box(value: Any) -> Box | None:
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]  # one box wrapped in a list
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    nums = [as_number(v) for v in value]
    if any(v is None for v in nums):
        return None
    x1, y1, x2, y2 = nums  # type: ignore[misc]
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def as_track(value: Any) -> dict[int, Box] | None:
    """``{"<second>": box}`` → {second: box}; keys that are not whole numbers and invalid boxes are dropped."""
    if not isinstance(value, dict):
        return None
    track: dict[int, Box] = {}
    for key, raw in value.items():
        second = as_number(key)
        box = as_box(raw)
        if second is None or box is None or second != int(second):
            continue
        track.setdefault(int(second), box)
    return track


def _text_span(text: str) -> Span | None:
    """A span written in words: "12.5 to 17 seconds", "12.5s - 17s", "00:03 - 00:07"; two different
    spans → None."""
    spans = set()
    prev = None
    for m in _TIME_TOKEN.finditer(text):
        if prev is not None and m.start() - prev.end() <= 24:
            gap = _UNIT_WORDS.sub(" ", text[prev.end() : m.start()].lower()).split()
            if len(gap) == 1 and gap[0] in _SEPARATORS:
                a, b = _token_seconds(prev), _token_seconds(m)
                spans.add((min(a, b), max(a, b)))
        prev = m
    return spans.pop() if len(spans) == 1 else None


def parse_span(text: str) -> Span | None:
    """The time span of a temporal-grounding answer: the last JSON ``{"time": [s, e]}`` with a valid span,
    else the last ``[s, e]`` list, else a span written in text."""
    spans = [_json_span(value) for value in iter_json(text)]
    for wanted in ("time", "list"):
        found = [span for kind, span in spans if kind == wanted and span is not None]
        if found:
            return found[-1]
    return _text_span(text)


def _json_span(value: Any) -> tuple[str, Span | None]:
    if isinstance(value, dict):
        return ("time", as_span(value["time"])) if "time" in value else ("", None)
    return "list", as_span(value)


def _json_box(value: Any) -> tuple[str, Box | None]:
    if isinstance(value, dict):
        for key in _BOX_KEYS:
            if key in value:
                return "dict", as_box(value[key])
        return "", None
    return "list", as_box(value)


def parse_box(text: str) -> Box | None:
    """The box of a spatial-grounding answer: the last ``{"boxes": [x1, y1, x2, y2]}`` (or ``box``,
    ``bbox``, ``bbox_2d``) with a valid box, else the last bare 4-number list."""
    boxes = [_json_box(value) for value in iter_json(text)]
    for wanted in ("dict", "list"):
        found = [box for kind, box in boxes if kind == wanted and box is not None]
        if found:
            return found[-1]
    return None


def parse_grounding_object(text: str) -> dict | None:
    """The last JSON object with a ``time`` or ``boxes`` key."""
    return last_json(text, lambda value: isinstance(value, dict) and ("time" in value or "boxes" in value))


def mean_track_iou(pred: dict[int, Box] | None, gold: dict[int, Box]) -> float:
    """Mean box IoU over the ground-truth seconds; a second missing from the prediction scores 0."""
    if not gold:
        return 0.0
    pred = pred or {}
    return sum(iou_2d(pred[s], box) if s in pred else 0.0 for s, box in gold.items()) / len(gold)


def _gold_object(sample: dict, keys: tuple[str, ...]) -> dict:
    truth = ground_truth(sample)
    obj = parse_grounding_object(truth)
    if obj is None or any(k not in obj for k in keys):
        raise ValueError(f"{sample.get('problem_type')!r} solution needs JSON with {keys}: {truth[:200]!r}.")
    return obj


@register_reward(
    "temporal grounding",
    aliases=("temporal_grounding", "temporal-grounding", "tvg"),
    answer_format='JSON {"time": [start_seconds, end_seconds]}',
    example='{"time": [12.5, 17.0]}',
)
def temporal_grounding(answer: str, sample: dict, config: object) -> Verdict:
    gold = as_span(_gold_object(sample, ("time",))["time"])
    if gold is None:
        raise ValueError(f"Temporal-grounding solution has no valid time span: {sample.get('solution')!r}.")
    pred = parse_span(answer)
    if pred is None:
        return Verdict(0.0, parsed=False, extras={"iou": 0.0})
    iou = iou_1d(pred, gold)
    return Verdict(iou, extras={"iou": iou})


@register_reward(
    "spatial grounding",
    aliases=("spatial_grounding", "spatial-grounding", "grounding"),
    answer_format='JSON {"boxes": [x1, y1, x2, y2]} in pixels of the frame',
    example='{"boxes": [48, 120, 210, 305]}',
)
def spatial_grounding(answer: str, sample: dict, config: object) -> Verdict:
    gold = as_box(_gold_object(sample, ("boxes",))["boxes"])
    if gold is None:
        raise ValueError(f"Spatial-grounding solution has no valid box: {sample.get('solution')!r}.")
    pred = parse_box(answer)
    if pred is None:
        return Verdict(0.0, parsed=False, extras={"iou": 0.0})
    iou = iou_2d(pred, gold)
    return Verdict(iou, extras={"iou": iou})


@register_reward(
    "spatial-temporal grounding",
    aliases=("spatial_temporal_grounding", "spatial temporal grounding", "spatio-temporal grounding", "stvg"),
    answer_format='JSON {"time": [start_seconds, end_seconds], "boxes": {"<second>": [x1, y1, x2, y2], ...}}',
    example='{"time": [3.0, 5.5], "boxes": {"3": [40, 60, 120, 200], "4": [44, 62, 126, 204]}}',
)
def spatial_temporal_grounding(answer: str, sample: dict, config: object) -> Verdict:
    """0.5 · temporal IoU + 0.5 · mean box IoU over the ground-truth seconds.

    A ground truth without any box (71 of 2000 STVG records: spans shorter than a second) scores the
    temporal IoU alone.
    """
    obj = _gold_object(sample, ("time", "boxes"))
    gold_span, gold_track = as_span(obj["time"]), as_track(obj["boxes"])
    if gold_span is None or gold_track is None:
        raise ValueError(f"Spatial-temporal solution has invalid time/boxes: {sample.get('solution')!r}.")
    pred = parse_grounding_object(answer) or {}
    span = as_span(pred.get("time"))
    track = as_track(pred.get("boxes"))
    tiou = iou_1d(span, gold_span) if span is not None else 0.0
    miou = mean_track_iou(track, gold_track)
    accuracy = 0.5 * tiou + 0.5 * miou if gold_track else tiou
    return Verdict(
        accuracy, parsed=span is not None and track is not None, extras={"tiou": tiou, "miou": miou}
    )


@register_reward(
    "tracking",
    aliases=("object tracking", "sot"),
    answer_format='JSON {"boxes": {"<second>": [x1, y1, x2, y2], ...}} with one box per second',
    example='{"boxes": {"0": [40, 60, 120, 200], "1": [44, 62, 126, 204]}}',
)
def tracking(answer: str, sample: dict, config: object) -> Verdict:
    gold = as_track(_gold_object(sample, ("boxes",))["boxes"])
    if not gold:
        raise ValueError(f"Tracking solution has no per-second boxes: {sample.get('solution')!r}.")
    pred = parse_grounding_object(answer) or {}
    track = as_track(pred.get("boxes"))
    miou = mean_track_iou(track, gold)
    return Verdict(miou, parsed=track is not None, extras={"miou": miou})
