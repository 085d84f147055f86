"""Record → :class:`~vrl.batch.Prompt`: render the chat prompt, load the media once, run the HF processor.

The same :class:`Prompt` feeds the rollout engine (its text + raw frames for vLLM, its token ids and
vision tensors for HF generate) and the training engine, so a record is decoded/read and processed once
per step, and both engines see identical prompt tokens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from cache_builder.errors import MediaError
from cache_builder.processor_inputs import image_input, processor_kwargs, video_metadata
from vrl.batch import VISION_KEYS, Prompt
from vrl.data.media import Media, MediaSource
from vrl.data.prompts import chat_messages
from vrl.log import get_logger

logger = get_logger(__name__)


def rollout_media(media: Media | None) -> dict[str, Any]:
    """Raw media in the form vLLM takes: video (uint8 T×H×W×C, metadata) or a PIL image."""
    if media is None:
        return {}
    if media.kind == "image":
        return {"image": [image_input(media.frames)]}
    meta = {
        **video_metadata(media.meta),
        "duration": float(media.meta.get("duration", 0.0)),
        "do_sample_frames": False,
    }
    return {"video": [(np.ascontiguousarray(media.frames.transpose(0, 2, 3, 1)), meta)]}


class PromptBuilder:
    """Builds prompts; records whose media fail or whose prompt is too long are skipped and counted."""

    def __init__(
        self,
        processor: Any,
        media: MediaSource,
        style: str,
        max_prompt_length: int,
        render: Callable[[dict[str, Any], str], str] | None = None,
    ) -> None:
        self.processor = processor
        self.media = media
        self.style = style
        self.max_prompt_length = max_prompt_length
        self.render = render
        """Optional ``(record, style) -> user text`` (an eval benchmark's own wording); None: the training prompt."""
        self.skipped: Counter[str] = Counter()

    def build(self, record: dict[str, Any], uid: str = "") -> Prompt | None:
        try:
            media = self.media.load(record)
        except MediaError as e:
            self.skipped[f"media_{e.reason}"] += 1
            logger.warning("skipping record %s: %s", record.get("problem_id"), e)
            return None
        user = self.render(record, self.style) if self.render is not None else None
        messages = chat_messages(record, self.style, media.kind if media else None, user)
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        kwargs: dict[str, Any] = {}
        if media is not None:
            pair = [(media.frames, media.meta)]
            kwargs = processor_kwargs(videos=pair) if media.kind == "video" else processor_kwargs(images=pair)
        out = self.processor(text=[text], return_tensors="pt", **kwargs)
        input_ids = out["input_ids"][0]
        if input_ids.numel() > self.max_prompt_length:
            self.skipped["prompt_too_long"] += 1
            logger.warning(
                "skipping record %s: prompt has %d tokens > data.max_prompt_length=%d",
                record.get("problem_id"),
                input_ids.numel(),
                self.max_prompt_length,
            )
            return None
        vision = {k: torch.as_tensor(out[k]) for k in VISION_KEYS if k in out}
        types = out.get("mm_token_type_ids")
        return Prompt(
            record=record,
            input_ids=input_ids,
            vision=vision,
            text=text,
            media=rollout_media(media),
            uid=uid,
            mm_token_type_ids=types[0] if types is not None else None,
        )
