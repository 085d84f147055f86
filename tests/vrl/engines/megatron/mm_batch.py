"""A small multimodal batch for engine tests: video, image, video+image and text-only prompts.

With ``for_vllm`` the frames have sizes the processors accept without resizing, the processor runs with
``do_resize=False`` (as the trainer's prompt builder and the vLLM rollout do) and the prompts carry the raw
media vLLM needs, so vLLM builds the same prompt tokens.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from vrl.batch import VISION_KEYS, Prompt, Trajectory

KINDS = [(False, True), (True, False), (True, True), (False, False)]  # (image, video)


def _factor(processor) -> int:
    ip = processor.image_processor
    return int(ip.patch_size) * int(ip.merge_size)


def make_prompt(
    processor, rng: np.random.Generator, image: bool, video: bool, words: str, for_vllm: bool
) -> Prompt:
    f = _factor(processor)
    vh, vw, ih, iw = (2 * f, 3 * f, 3 * f, 2 * f) if for_vllm else (64, 96, 70, 90)
    content: list[dict] = []
    kwargs: dict = {"do_resize": False} if for_vllm else {}
    media: dict = {}
    if video:
        frames = rng.integers(0, 256, (4, vh, vw, 3), dtype=np.uint8)
        meta = {"fps": 2.0, "total_num_frames": 4, "frames_indices": [0, 1, 2, 3], "duration": 2.0}
        content.append({"type": "video"})
        kwargs.update(videos=[frames], video_metadata=[meta], do_sample_frames=False)
        media["video"] = [(frames, {**meta, "do_sample_frames": False})]
    if image:
        pixels = rng.integers(0, 256, (ih, iw, 3), dtype=np.uint8)
        content.append({"type": "image"})
        kwargs["images"] = [pixels]
        media["image"] = [Image.fromarray(pixels)]
    content.append({"type": "text", "text": words})
    text = processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
    )
    out = processor(text=[text], return_tensors="pt", **kwargs)
    types = out.get("mm_token_type_ids")
    return Prompt(
        record={"problem_id": words},
        input_ids=out["input_ids"][0],
        vision={k: torch.as_tensor(out[k]) for k in VISION_KEYS if k in out},
        text=text,
        media=media if for_vllm else {},
        mm_token_type_ids=types[0] if types is not None else None,
    )


def multimodal_prompts(processor, seed: int = 0, for_vllm: bool = False) -> list[Prompt]:
    rng = np.random.default_rng(seed)
    return [
        make_prompt(processor, rng, image, video, f"question number {i} about the clip", for_vllm)
        for i, (image, video) in enumerate(KINDS)
    ]


def multimodal_trajectories(processor, seed: int = 0, vocab: int = 2048) -> list[Trajectory]:
    """Four trajectories (video, image, video+image, text-only) with random responses of different lengths."""
    rng = np.random.default_rng(seed + 1)
    trajs = []
    for i, prompt in enumerate(multimodal_prompts(processor, seed)):
        length = [5, 9, 3, 7][i]
        trajs.append(
            Trajectory(
                prompt=prompt,
                response_ids=torch.tensor(rng.integers(10, vocab, length), dtype=torch.long),
                response_text="",
                group=i // 2,
                advantage=[1.0, -0.5, 0.25, -0.75][i],
                old_logp=torch.full((length,), -7.5),
            )
        )
    return trajs
