"""Record → :class:`~vrl.batch.Prompt`: render the chat prompt, load the media once, run the HF processor.

The same :class:`Prompt` feeds the rollout engine (its text + raw frames for vLLM, its token ids and
vision tensors for HF generate) and the training engine, so a record is decoded/read and processed once
per step, and both engines see identical prompt tokens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
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


def rollout_media(media: Media | Sequence[Media] | None) -> dict[str, Any]:
    """Raw media in the form vLLM takes: videos (uint8 T×H×W×C, metadata) and PIL images, in prompt order."""
    items = [] if media is None else [media] if isinstance(media, Media) else list(media)
    out: dict[str, list[Any]] = {}
    for m in items:
        if m.kind == "image":
            out.setdefault("image", []).append(image_input(m.frames))
            continue
        meta = {
            **video_metadata(m.meta),
            "duration": float(m.meta.get("duration", 0.0)),
            "do_sample_frames": False,
        }
        out.setdefault("video", []).append((np.ascontiguousarray(m.frames.transpose(0, 2, 3, 1)), meta))
    return out


class PromptBuilder:
    """Builds prompts; records whose media fail or whose prompt is too long are skipped and counted."""

    def __init__(
        self,
        processor: Any,
        media: MediaSource,
        style: str,
        max_prompt_length: int,
        render: Callable[[dict[str, Any], str], str] | None = None,
        extra_media: bool = False,
    ) -> None:
        self.processor = processor
        self.media = media
        self.style = style
        self.max_prompt_length = max_prompt_length
        self.render = render
        """Optional ``(record, style) -> user text`` (an eval benchmark's own wording); None: the training prompt."""
        self.extra_media = extra_media
        """Also give the record's extra media after the primary one (``image_path``, ``images``, ``videos``:
        Video-MMMU's question image in evaluation); False (training): the primary medium only."""
        self.skipped: Counter[str] = Counter()

    def build(self, record: dict[str, Any], uid: str = "") -> Prompt | None:
        try:
            if self.extra_media:
                media = self.media.load_all(record)
            else:
                primary = self.media.load(record)
                media = [primary] if primary is not None else []
        except MediaError as e:
            self.skipped[f"media_{e.reason}"] += 1
            logger.warning("skipping record %s: %s", record.get("problem_id"), e)
            return None
        user = self.render(record, self.style) if self.render is not None else None
        messages = chat_messages(record, self.style, [m.kind for m in media], user)
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        kwargs: dict[str, Any] = {}
        if media:
            kwargs = processor_kwargs(
                videos=[(m.frames, m.meta) for m in media if m.kind == "video"],
                images=[(m.frames, m.meta) for m in media if m.kind == "image"],
            )
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
