"""Shared test helpers: where the fixtures and the real market-data samples live."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_file(*parts) -> Path:
    """Path of a real sample in ../shared/data; skip the test (with the reason) when absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real market-data sample {path} is absent (it lives in ../shared/data beside the project)")
    return path
