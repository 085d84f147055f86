from pathlib import Path

import pytest
from toy_helpers import SMALL, read_records

from vrl.toy import ToyConfig, ensure_toy_suite


@pytest.fixture(scope="session")
def small_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "suite"
    return ensure_toy_suite(ToyConfig(**SMALL, out=str(out)))


@pytest.fixture(scope="session")
def records(small_suite: Path) -> list[dict]:
    return read_records(small_suite, "train") + read_records(small_suite, "val")
