from pathlib import Path

import pytest

from vrl.models.tiny import resolve_model


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private VRL_HOME shared by the session, so each tiny model is built once per test run."""
    return tmp_path_factory.mktemp("vrl_home")


@pytest.fixture(scope="session")
def built_models(tiny_home: Path) -> dict[str, Path]:
    mp = pytest.MonkeyPatch()
    mp.setenv("VRL_HOME", str(tiny_home))
    try:
        return {name: resolve_model(name) for name in ("tiny-qwen2.5-vl", "tiny-qwen3-vl")}
    finally:
        mp.undo()
