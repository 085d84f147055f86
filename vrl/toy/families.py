"""The toy suite's task families: one function per family, each drawing one record's scene and answer.

Objects are large (a quarter to a half of the short side), saturated and few, on dark plain backgrounds,
so every answer is visible in a handful of low-resolution frames. Sizes, speeds and boxes are in pixels of
the original frame; the question states the frame size where the answer is in pixels.
"""

from __future__ import annotations

import json

from vrl.toy.scenes import Scene, ToyObject, ToyText
from vrl.toy.spec import COLORS, DIRECTIONS, SHAPES, WORDS
from vrl.toy.tasks import Draw, Item, register_family

COLOR_NAMES = tuple(COLORS)
_MOTION = {"left": "moves to the left", "right": "moves to the right", "up": "moves up", "down": "moves down"}


def _video(draw: Draw, min_side: int = 0, min_duration: float = 0.0, pattern_ok: bool = False) -> dict:
    width, height = draw.frame_size(min_side)
    return {
        "kind": "video",
        "width": width,
        "height": height,
        "background": draw.background(pattern_ok),
        **draw.timing(min_duration),
    }


def _image(draw: Draw, min_side: int = 0) -> dict:
    width, height = draw.frame_size(min_side)
    return {
        "kind": "image",
        "width": width,
        "height": height,
        "background": draw.background(),
        "image_format": draw.image_format(),
    }


def _last_time(base: dict) -> float:
    return Scene(**base).last_time


def _one_object(
    draw: Draw, base: dict, shape: str, color: str, motion: str, lo=0.3, hi=0.45, **kw
) -> ToyObject:
    """A static object (``motion='still'``) or one moving in a direction, sized for the frame."""
    size = draw.object_size(base["width"], base["height"], lo, hi)
    if motion == "still":
        return draw.static_object(base["width"], base["height"], shape, color, size, **kw)
    return draw.moving_object(
        (base["width"], base["height"]), shape, color, size, motion, _last_time(base), **kw
    )


def _box_json(box: tuple[int, int, int, int]) -> list[int]:
    return [int(v) for v in box]


@register_family("color", "multiple choice", "video")
def color(draw: Draw) -> Item:
    base = _video(draw)
    col = draw.balanced(COLOR_NAMES, "answer")
    shape = draw.rng.choice(SHAPES)
    motion = draw.rng.choice(("still", *DIRECTIONS))
    obj = _one_object(draw, base, shape, col, motion)
    options, letter = draw.options(col, COLOR_NAMES)
    seen, seen_letter = _seen_option(draw, col, options)
    said = col if draw.cfg.teacher_error == "answer" else seen  # a slip names the right color
    return Item(
        Scene(**base, objects=(obj,)),
        f"What color is the {shape} in the video?",
        letter,
        f"There is one {shape} in the video and it is {said}. The option {said} is {seen_letter}.",
        options,
        offline_answer=seen_letter,
    )


def _seen_option(draw: Draw, col: str, options: tuple[str, ...]) -> tuple[str, str]:
    """The color the teacher sees for ``col`` and the letter of its option (``toy.teacher_confuses``)."""
    seen = draw.seen(col)
    letter = next(opt[0] for opt in options if opt[3:] == seen)
    return seen, letter


@register_family("shape", "multiple choice", "video")
def shape(draw: Draw) -> Item:
    base = _video(draw)
    kind = draw.balanced(SHAPES, "answer")
    col = draw.rng.choice(COLOR_NAMES)
    obj = _one_object(draw, base, kind, col, "still", lo=0.35, hi=0.5)
    options, letter = draw.options(kind, SHAPES)
    return Item(
        Scene(**base, objects=(obj,)),
        f"What shape is the {col} object in the video?",
        letter,
        f"The {col} object is a {kind}. The option {kind} is {letter}.",
        options,
    )


@register_family("direction", "multiple choice", "video", pattern_ok=True)
def direction(draw: Draw) -> Item:
    base = _video(draw, min_duration=1.5, pattern_ok=True)
    way = draw.balanced(DIRECTIONS, "answer")
    col, kind = draw.rng.choice(COLOR_NAMES), draw.rng.choice(SHAPES)
    obj = _one_object(draw, base, kind, col, way, lo=0.25, hi=0.35)
    options, letter = draw.options(way, DIRECTIONS)
    return Item(
        Scene(**base, objects=(obj,)),
        f"In which direction does the {col} {kind} move?",
        letter,
        f"The {col} {kind} {_MOTION[way]} across the frame, so the direction is {way}: option {letter}.",
        options,
    )


FLASH_ON, FLASH_OFF, FLASH_LEAD = 0.7, 0.7, 0.2


@register_family("count_flashes", "numerical", "video")
def count_flashes(draw: Draw) -> Item:
    """On and off phases of 0.7 s: every flash and gap is seen when sampling at 2 fps."""
    count = draw.balanced((1, 2, 3, 4), "answer")
    starts = [round(FLASH_LEAD + k * (FLASH_ON + FLASH_OFF), 3) for k in range(count)]
    visible = tuple((s, round(s + FLASH_ON, 3)) for s in starts)
    base = _video(draw, min_duration=visible[-1][1] + 0.4)
    col, kind = draw.rng.choice(COLOR_NAMES), draw.rng.choice(SHAPES)
    obj = _one_object(draw, base, kind, col, "still", visible=visible)
    times = ", ".join(f"{a:g}" for a, _ in visible)
    return Item(
        Scene(**base, objects=(obj,), notes={"count": count}),
        f"How many times does the {col} {kind} flash?",
        str(count),
        f"The {col} {kind} appears at {times} seconds and disappears in between, so it flashes {count} times.",
    )


@register_family("count_objects", "numerical", "image")
def count_objects(draw: Draw) -> Item:
    """Objects in distinct cells of a 3×3 grid, so none overlap."""
    count = draw.balanced((1, 2, 3, 4, 5), "answer")
    base = _image(draw, min_side=96)
    col = draw.rng.choice(COLOR_NAMES)
    cell_w, cell_h = base["width"] // 3, base["height"] // 3
    size = max(8, int(min(cell_w, cell_h) * draw.rng.uniform(0.55, 0.8)))
    objects = []
    for cell in sorted(draw.rng.sample(range(9), count)):
        cx, cy = (cell % 3) * cell_w, (cell // 3) * cell_h
        x0 = cx + draw.rng.randint(0, cell_w - size)
        y0 = cy + draw.rng.randint(0, cell_h - size)
        objects.append(ToyObject(draw.rng.choice(SHAPES), col, size, x0, y0))
    return Item(
        Scene(**base, objects=tuple(objects)),
        "How many objects are in the image?",
        str(count),
        f"I count the {col} shapes one by one: there are {count}.",
    )


@register_family("size", "regression", "video")
def size(draw: Draw) -> Item:
    base = _video(draw)
    col = draw.rng.choice(COLOR_NAMES)
    obj = _one_object(draw, base, "square", col, "still", lo=0.2, hi=0.8)
    w, h = base["width"], base["height"]
    return Item(
        Scene(**base, objects=(obj,)),
        f"The frame is {w}x{h} pixels. How long is a side of the {col} square, in pixels?",
        str(obj.size),
        f"The {col} square spans {obj.size} of the {w} pixels of the frame width, so a side is {obj.size} pixels.",
    )


@register_family("speed", "regression", "video")
def speed(draw: Draw) -> Item:
    base = _video(draw, min_duration=1.5)
    col, kind = draw.rng.choice(COLOR_NAMES), draw.rng.choice(SHAPES)
    obj = _one_object(draw, base, kind, col, draw.rng.choice(DIRECTIONS), lo=0.2, hi=0.3)
    value = abs(obj.vx) + abs(obj.vy)
    w, h = base["width"], base["height"]
    return Item(
        Scene(**base, objects=(obj,)),
        f"The frame is {w}x{h} pixels. How fast does the {col} {kind} move, in pixels per second?",
        str(value),
        f"The {col} {kind} moves {value} pixels in each second, so its speed is {value} pixels per second.",
    )


@register_family("temporal_grounding", "temporal grounding", "video")
def temporal_grounding(draw: Draw) -> Item:
    base = _video(draw, min_duration=2.0)
    slots = int(base["duration"] / 0.5)
    start = 0.5 * draw.rng.randint(0, slots - 3)
    end = 0.5 * draw.rng.randint(int(start / 0.5) + 2, slots - 1)
    col, kind = draw.rng.choice(COLOR_NAMES), draw.rng.choice(SHAPES)
    obj = _one_object(draw, base, kind, col, "still", visible=((start, end),))
    answer = json.dumps({"time": [start, end]})
    return Item(
        Scene(**base, objects=(obj,)),
        f"When is the {col} {kind} visible in the video? Give the start and end time in seconds.",
        answer,
        f"The {col} {kind} appears at {start:g} seconds and disappears after {end:g} seconds.",
    )


@register_family("spatial_grounding", "spatial grounding", "image")
def spatial_grounding(draw: Draw) -> Item:
    """The target and up to two distractors of other colors, in distinct quadrants."""
    base = _image(draw)
    w, h = base["width"], base["height"]
    col, kind = draw.rng.choice(COLOR_NAMES), draw.rng.choice(SHAPES)
    cells = draw.rng.sample(range(4), 1 + draw.rng.randint(0, 2))
    size = draw.object_size(w // 2, h // 2, 0.5, 0.85)
    others = [c for c in COLOR_NAMES if c != col]
    objects = []
    for k, cell in enumerate(cells):
        cx, cy = (cell % 2) * (w // 2), (cell // 2) * (h // 2)
        x0 = cx + draw.rng.randint(0, w // 2 - size)
        y0 = cy + draw.rng.randint(0, h // 2 - size)
        shape_k, col_k = (kind, col) if k == 0 else (draw.rng.choice(SHAPES), draw.rng.choice(others))
        objects.append(ToyObject(shape_k, col_k, size, x0, y0))
    box = _box_json(objects[0].box_at(0.0))
    return Item(
        Scene(**base, objects=tuple(objects)),
        f"The image is {w}x{h} pixels. Where is the {col} {kind}? Give its bounding box in pixels.",
        json.dumps({"boxes": box}),
        f"The {col} {kind} spans x from {box[0]} to {box[2]} and y from {box[1]} to {box[3]}.",
    )


@register_family("spatial_temporal_grounding", "spatial-temporal grounding", "video")
def spatial_temporal_grounding(draw: Draw) -> Item:
    """A moving object shown from whole second ``s`` to whole second ``e``; boxes at each whole second."""
    base = _video(draw, min_duration=2.5)
    last_whole = int(base["duration"] - 0.5)
    start = draw.rng.randint(0, max(0, last_whole - 1))
    end = draw.rng.randint(start + 1, last_whole)
    col, kind = draw.rng.choice(COLOR_NAMES), draw.rng.choice(SHAPES)
    obj = _one_object(
        draw, base, kind, col, draw.rng.choice(DIRECTIONS), lo=0.25, hi=0.35, visible=((start, end),)
    )
    boxes = {str(t): _box_json(obj.box_at(t)) for t in range(start, end + 1)}
    w, h = base["width"], base["height"]
    return Item(
        Scene(**base, objects=(obj,)),
        f"The frame is {w}x{h} pixels. When is the {col} {kind} visible, and where is it at each whole second "
        "while visible? Give the time span in seconds and its bounding boxes in pixels.",
        json.dumps({"time": [float(start), float(end)], "boxes": boxes}),
        f"The {col} {kind} is visible from {start} to {end} seconds while it {_MOTION[_way(obj)]}.",
    )


def _way(obj: ToyObject) -> str:
    if obj.vx:
        return "right" if obj.vx > 0 else "left"
    return "down" if obj.vy > 0 else "up"


@register_family("tracking", "tracking", "video", pattern_ok=True)
def tracking(draw: Draw) -> Item:
    base = _video(draw, min_duration=2.0, pattern_ok=True)
    col, kind = draw.rng.choice(COLOR_NAMES), draw.rng.choice(SHAPES)
    obj = _one_object(draw, base, kind, col, draw.rng.choice(DIRECTIONS), lo=0.25, hi=0.35)
    scene = Scene(**base, objects=(obj,))
    boxes = {str(t): _box_json(obj.box_at(t)) for t in scene.whole_seconds()}
    w, h = base["width"], base["height"]
    return Item(
        scene,
        f"The frame is {w}x{h} pixels. Track the {col} {kind}: give its bounding box in pixels at every whole "
        "second of the video.",
        json.dumps({"boxes": boxes}),
        f"The {col} {kind} {_MOTION[_way(obj)]}; I follow it from second 0 to second {scene.whole_seconds()[-1]}.",
    )


@register_family("ocr", "ocr", "mixed")
def ocr(draw: Draw) -> Item:
    word = draw.balanced(WORDS, "answer")
    kind = "image" if draw.j % 2 else "video"
    base = _image(draw, min_side=64) if kind == "image" else _video(draw, min_side=64)
    font_size = int(min(base["height"] * 0.5, base["width"] / 2.6))
    return Item(
        Scene(**base, text=ToyText(word, font_size)),
        f"What word is written in the {kind}?",
        word,
        f"The letters in the {kind} read {' '.join(word)}, which spells {word}.",
    )


@register_family("boolean", "boolean", "video")
def boolean(draw: Draw) -> Item:
    answer = draw.balanced(("yes", "no"), "answer")
    asked = draw.balanced(COLOR_NAMES, "asked")
    col = asked if answer == "yes" else draw.rng.choice([c for c in COLOR_NAMES if c != asked])
    base = _video(draw)
    kind = draw.rng.choice(SHAPES)
    obj = _one_object(draw, base, kind, col, draw.rng.choice(("still", *DIRECTIONS)))
    seen = draw.seen(col) if draw.cfg.teacher_error == "perception" else col
    said = "yes" if seen == asked else "no"
    return Item(
        Scene(**base, objects=(obj,)),
        f"Is there a {asked} object in the video?",
        answer,
        # Name both colors before the verdict: the decision is then a comparison of two nearby words.
        f"The question asks for a {asked} object. The only object in the video is a {seen} {kind}. "
        f"{seen.capitalize()} is {'' if said == 'yes' else 'not '}{asked}, so the answer is {said}.",
        offline_answer=said,
    )


@register_family("caption", "open-ended", "video")
def caption(draw: Draw) -> Item:
    motion = draw.balanced(("still", *DIRECTIONS), "answer")
    base = _video(draw, min_duration=1.5)
    col, kind = draw.rng.choice(COLOR_NAMES), draw.rng.choice(SHAPES)
    obj = _one_object(draw, base, kind, col, motion)
    action = "stays still" if motion == "still" else _MOTION[motion]
    sentence = f"A {col} {kind} {action} on a {base['background']} background."
    return Item(
        Scene(**base, objects=(obj,)),
        "Describe the video in one short sentence.",
        sentence,
        f"I see one {col} {kind}; it {action}. The background is plain {base['background']}.",
    )


@register_family("math", "math", "image")
def math(draw: Draw) -> Item:
    op = draw.balanced(("+", "-"), "op")
    a, b = draw.rng.randint(1, 9), draw.rng.randint(1, 9)
    if op == "-" and a < b:
        a, b = b, a
    value = a + b if op == "+" else a - b
    base = _image(draw, min_side=64)
    expression = f"{a} {op} {b}"
    font_size = int(min(base["height"] * 0.45, base["width"] / 3.6))
    return Item(
        Scene(**base, text=ToyText(expression, font_size), notes={"expression": expression}),
        "What is the value of the arithmetic expression shown in the image?",
        str(value),
        f"The image shows {expression}. Computing it gives {value}.",
    )


@register_family("color_image", "multiple choice", "image")
def color_image(draw: Draw) -> Item:
    """The image counterpart of ``color``: one still object, the same options and answer scheme, so joint
    image + video training can be compared with video-only training on the same skill."""
    base = _image(draw)
    col = draw.balanced(COLOR_NAMES, "answer")
    shape = draw.rng.choice(SHAPES)
    obj = _one_object(draw, base, shape, col, "still")
    options, letter = draw.options(col, COLOR_NAMES)
    seen, seen_letter = _seen_option(draw, col, options)
    said = col if draw.cfg.teacher_error == "answer" else seen  # a slip names the right color
    return Item(
        Scene(**base, objects=(obj,)),
        f"What color is the {shape} in the image?",
        letter,
        f"There is one {shape} in the image and it is {said}. The option {said} is {seen_letter}.",
        options,
        offline_answer=seen_letter,
    )
