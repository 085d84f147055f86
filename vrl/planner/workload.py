"""What one update puts through a device: sequence lengths from the media budget, rows per micro-batch.

The longest prompt is what sets the peak: its vision tokens follow the same rules as the processors
(patches of ``patch_size``², ``temporal_patch_size`` frames per patch, ``spatial_merge_size``² patches
per token), at the budget's largest frame count and per-frame pixels, plus ``plan.text_tokens`` of text,
capped by ``data.max_prompt_length`` (longer prompts are skipped). ``plan.prompt_tokens`` replaces the
estimate when the data's real longest prompt is known. Responses are ``rollout.max_response_length``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vrl.planner.activations import Sequences, layout_shares_prompts
from vrl.planner.layout import Layout
from vrl.planner.shapes import ModelShapes, VisionShapes


@dataclass(frozen=True)
class Workload:
    prompt_tokens: int
    """The longest prompt, vision tokens included."""
    response_tokens: int
    vision_patches: int
    """Vision-tower patches of that prompt's media."""
    group_size: int
    """rollout.n: trajectories per prompt (consecutive in a micro-batch)."""
    trajectories_per_update: int
    """Trajectories of one optimizer update over all data-parallel ranks."""
    entropy: bool = True
    """The update computes token entropy (on-policy steps and the entropy bonus do)."""
    reference: bool = False
    """A frozen reference policy is held for a KL term."""

    @property
    def length(self) -> int:
        return self.prompt_tokens + self.response_tokens

    def micro_batch(self, layout: Layout) -> Sequences:
        """The largest micro-batch one device runs under ``layout``."""
        per_rank = max(1, -(-self.trajectories_per_update // layout.dp))
        n = self.group_size
        if layout.max_tokens_per_micro_batch:
            # the engine places whole groups, or pieces of one that fit: rows of ceil(rows / n) prompts
            rows = 1
            while rows < per_rank and self.cost(rows + 1, layout) <= layout.max_tokens_per_micro_batch:
                rows += 1
            prompts = -(-rows // n)
        else:  # consecutive slices of micro_batch_size rows can span one group more
            rows = min(layout.micro_batch_size, per_rank)
            aligned = rows % n == 0 or n % rows == 0
            prompts = min(rows, -(-rows // n) + (0 if aligned else 1))
        return Sequences(rows, self.prompt_tokens, self.response_tokens, self.vision_patches, prompts)

    def cost(self, rows: int, layout: Layout) -> int:
        """Tokens the engine counts against ``engine.max_tokens_per_micro_batch`` for ``rows`` trajectories
        of ``ceil(rows / group_size)`` groups (:func:`vrl.engines.microbatch.micro_batch_cost` when every
        trajectory is the longest): a shared prompt once, else every row's prompt and response. The engine
        shares prompts under the budget unless a padded pass runs with gradient checkpointing."""
        prompts = -(-rows // self.group_size)
        if layout_shares_prompts(layout) and prompts < rows:
            return prompts * self.prompt_tokens + rows * self.response_tokens
        return rows * self.length


def video_patches(budget: Any, v: VisionShapes) -> int:
    """ViT patches of the largest video the budget admits (``data.video``)."""
    frames = max(v.temporal_patch_size, budget.max_frames - budget.max_frames % v.temporal_patch_size)
    per_frame = max(budget.min_pixels, min(budget.max_pixels, budget.total_pixels // frames))
    return (frames // v.temporal_patch_size) * (per_frame // v.patch_size**2)


def image_patches(budget: Any, v: VisionShapes) -> int:
    """ViT patches of the largest image the budget admits (``data.image``)."""
    return budget.max_pixels // v.patch_size**2


def workload_from_config(cfg: Any, shapes: ModelShapes) -> Workload:
    """The workload of a train-stage config on a model of ``shapes``."""
    v = shapes.vision
    merge = v.spatial_merge_size**2
    patches = max(video_patches(cfg.data.video, v), image_patches(cfg.data.image, v))
    if cfg.plan.prompt_tokens:
        prompt = cfg.plan.prompt_tokens
    else:  # a prompt over data.max_prompt_length is skipped, so the cap also caps its media
        prompt = min(cfg.data.max_prompt_length, cfg.plan.text_tokens + patches // merge)
        patches = min(patches, max(0, prompt - cfg.plan.text_tokens) * merge)
    step = cfg.trainer.rollout_batch_size * cfg.rollout.n
    return Workload(
        prompt_tokens=prompt,
        response_tokens=cfg.rollout.max_response_length,
        vision_patches=patches,
        group_size=cfg.rollout.n,
        trajectories_per_update=cfg.trainer.global_batch_size or step,
        entropy=True,
        reference=bool(cfg.algorithm.uses_reference),
    )
