"""Helpers of the toy-suite tests: reading records and decoding frames with the ffmpeg CLI."""

import json
import subprocess
from pathlib import Path

import numpy as np

#: a suite with every family twice in train, once in val, and a coverage variant in every other record
SMALL = {"num_train": 30, "num_val": 15, "coverage_every": 2, "seed": 3}


def read_records(suite: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (suite / f"{split}.jsonl").read_text().splitlines()]


PROBE = ("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height")
PROBE += ("-show_entries", "frame=pts_time", "-of", "json")
RAW_RGB = ("-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")


def decode(path: Path) -> tuple[np.ndarray, list[float]]:
    """All frames as uint8 (T, H, W, 3) RGB and their presentation times, decoded by the ffmpeg CLI."""
    info = json.loads(
        subprocess.run(
            [*PROBE, str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    width, height = info["streams"][0]["width"], info["streams"][0]["height"]
    times = [float(f["pts_time"]) for f in info["frames"]]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), *RAW_RGB],
        capture_output=True,
        check=True,
    ).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    return frames, times


def color_mask(frame: np.ndarray, rgb: tuple[int, int, int], tol: int = 70) -> np.ndarray:
    """(H, W) bool: pixels within ``tol`` of ``rgb`` in every channel."""
    return (np.abs(frame.astype(np.int16) - np.array(rgb, np.int16)) <= tol).all(axis=-1)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Edge box ``[x1, y1, x2, y2]`` of the True pixels (x2/y2 exclusive), or None."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
