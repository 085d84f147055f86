"""Fixtures of the Megatron engine tests: tiny checkpoints, the HF reference, a one-process group."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # helpers shared with the FSDP tests

NAMES = ("tiny-qwen2.5-vl", "tiny-qwen3-vl")


@pytest.fixture(scope="session")
def mg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private VRL_HOME for the session (exported, so worker subprocesses see the same models)."""
    home = tmp_path_factory.mktemp("vrl_home_megatron")
    mp = pytest.MonkeyPatch()
    mp.setenv("VRL_HOME", str(home))
    yield home
    mp.undo()


@pytest.fixture(scope="session")
def mg_models(mg_home: Path) -> dict[str, Path]:
    from vrl.models.tiny import resolve_model

    return {name: resolve_model(name) for name in NAMES}


@pytest.fixture(scope="session")
def hf_reference(mg_models):
    """Per model: (trajectories, HF log-probs (B, R), HF entropy (B, R), response lengths)."""
    from mm_batch import multimodal_trajectories

    from vrl.batch import collate
    from vrl.models.loading import load_hf_model, load_processor
    from vrl.models.policy import ResponseLogProbs

    out = {}
    for name, path in mg_models.items():
        trajs = multimodal_trajectories(load_processor(path))
        mb = collate(trajs, 0)
        with torch.no_grad():
            logp, ent = ResponseLogProbs(load_hf_model(path).eval())(mb, with_entropy=True)
        out[name] = (trajs, logp, ent, mb.response_lens.tolist())
    return out


@pytest.fixture(scope="module")
def one_process():
    """torch.distributed with one rank in this process (gloo); megatron state torn down afterwards."""
    from vrl.distributed import init_distributed, shutdown

    ctx = init_distributed()
    yield ctx
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    shutdown()
