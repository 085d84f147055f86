"""Micro-batches of one video prompt with chosen frame count and size, and models of chosen width, built
from a tiny checkpoint's config and processor (random weights, nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cache_builder.processor_inputs import processor_kwargs
from vrl.batch import VISION_KEYS, Prompt, Trajectory, collate
from vrl.models.loading import load_processor
from vrl.planner.activations import Sequences


def build_model(path: Path, dtype: torch.dtype, **text: int) -> torch.nn.Module:
    """The checkpoint's architecture with ``text`` config overrides (the vision merger follows the hidden size)."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    cfg = AutoConfig.from_pretrained(path)
    for key, value in text.items():
        setattr(cfg.text_config, key, value)
    if "hidden_size" in text:
        cfg.vision_config.out_hidden_size = text["hidden_size"]
    torch.manual_seed(0)
    return AutoModelForImageTextToText.from_config(cfg).to(dtype)


def video_prompt(path: Path, frames: int, side: int, seed: int = 0, words: int = 20) -> Prompt:
    """A prompt with one random video of ``frames`` frames of ``side`` × ``side`` merge units (frames=0: text)."""
    processor = load_processor(path)
    factor = processor.image_processor.patch_size * processor.image_processor.merge_size
    rng = np.random.RandomState(seed)
    media = [{"type": "video"}] if frames else []
    messages = [{"role": "user", "content": [*media, {"type": "text", "text": " ".join(["word"] * words)}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    kwargs = {}
    if frames:
        pixels = rng.randint(0, 255, (frames, 3, side * factor, side * factor), dtype=np.uint8)
        meta = {
            "fps": 2.0,
            "frames_indices": list(range(0, 2 * frames, 2)),
            "total_num_frames": 2 * frames,
            "duration": float(frames),
        }
        kwargs = processor_kwargs(videos=[(pixels, meta)])
    out = processor(text=[text], return_tensors="pt", **kwargs)
    types = out.get("mm_token_type_ids")
    return Prompt(
        record={},
        input_ids=out["input_ids"][0],
        vision={k: out[k] for k in VISION_KEYS if k in out},
        text=text,
        mm_token_type_ids=types[0] if types is not None else None,
    )


def micro_batch(prompts: list[Prompt], rows: int, response: int, share: bool):
    """``rows`` trajectories spread evenly over ``prompts`` (consecutive rows share one), the collated
    micro-batch, and its :class:`Sequences` for the planner."""
    trajs = [
        Trajectory(
            prompt=prompts[i * len(prompts) // rows],
            response_ids=torch.randint(0, 2000, (response,)),
            response_text="",
            group=i * len(prompts) // rows,
        )
        for i in range(rows)
    ]
    grid = prompts[0].vision.get("video_grid_thw")
    patches = int(grid[0].prod()) if grid is not None else 0
    seq = Sequences(rows, prompts[0].input_ids.numel(), response, patches, len(prompts))
    return collate(trajs, 0, share), seq, trajs
