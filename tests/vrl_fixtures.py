"""Builders shared by engine, rollout and trainer tests: processed prompts and trajectories from a tiny
model's own processor (random frames and images, no toy suite or cache needed)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import torch

from cache_builder.processor_inputs import processor_kwargs
from vrl.batch import VISION_KEYS, Prompt, Trajectory
from vrl.data.media import Media
from vrl.data.processing import rollout_media
from vrl.models.loading import load_processor, model_family

QUESTIONS = [
    ("video", "What color is the box?"),
    ("image", "Where is the circle?"),
    ("video", "How many flashes are there?"),
    ("text", "What is 2 + 3?"),
]
RESPONSES = [
    "<answer>A</answer><|im_end|>",
    "<think>it is red</think><answer>B</answer><|im_end|>",
    "<answer>3</answer>",
    "<think>two plus three</think><answer>5</answer><|im_end|>",
]


def make_prompt(processor, kind: str, question: str, seed: int, factor: int = 28) -> Prompt:
    """``factor``: the family's resize factor (28 Qwen2.5-VL, 32 Qwen3-VL); frames are sized to it."""
    rng = np.random.RandomState(seed)
    content = [] if kind == "text" else [{"type": kind}]
    messages = [{"role": "user", "content": [*content, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    kwargs = {}
    media = None
    if kind == "video":
        frames = rng.randint(0, 255, (4, 3, 2 * factor, 3 * factor), dtype=np.uint8)
        meta = {"fps": 4.0, "frames_indices": [0, 2, 4, 6], "total_num_frames": 8, "duration": 2.0}
        kwargs = processor_kwargs(videos=[(frames, meta)])
        media = Media("video", frames, meta)
    elif kind == "image":
        frames = rng.randint(0, 255, (1, 3, 2 * factor, 2 * factor), dtype=np.uint8)
        kwargs = processor_kwargs(images=[(frames, {})])
        media = Media("image", frames, {})
    out = processor(text=[text], return_tensors="pt", **kwargs)
    return Prompt(
        record={
            "problem_type": "multiple choice",
            "solution": "<answer>A</answer>",
            "problem_id": f"p{seed}",
        },
        input_ids=out["input_ids"][0],
        vision={k: out[k] for k in VISION_KEYS if k in out},
        text=text,
        media=rollout_media(media),
        mm_token_type_ids=out["mm_token_type_ids"][0] if "mm_token_type_ids" in out else None,
    )


def make_prompts(model_path: Path, uint8_patches: bool = False) -> list[Prompt]:
    """One prompt per QUESTIONS entry; ``uint8_patches``: video patches left for the model to normalise."""
    processor = load_processor(model_path, uint8_patches=uint8_patches)
    factor = 32 if model_family(model_path) == "qwen3_vl" else 28
    return [make_prompt(processor, kind, q, seed=i, factor=factor) for i, (kind, q) in enumerate(QUESTIONS)]


def make_trajectories(model_path: Path, per_prompt: int = 2) -> list[Trajectory]:
    """Groups of ``per_prompt`` trajectories per prompt, with alternating advantages."""
    tok = load_processor(model_path).tokenizer
    trajs = []
    for g, prompt in enumerate(make_prompts(model_path)):
        for j in range(per_prompt):
            text = RESPONSES[(g + j) % len(RESPONSES)]
            ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
            trajs.append(
                Trajectory(
                    prompt=prompt,
                    response_ids=ids,
                    response_text=text,
                    group=g,
                    advantage=1.0 - 2.0 * (j % 2),
                )
            )
    return trajs


def run_command(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(capture_output=True, text=True)`` in its own session; on timeout the whole process
    group is killed, so grandchildren holding the pipes (job workers) cannot hang the test."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"timed out after {timeout} s: {cmd}\n{out[-3000:]}\n{err[-3000:]}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
