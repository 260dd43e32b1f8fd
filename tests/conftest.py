"""Shared test helpers: where the fixtures and the real market-data samples live."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
# the real samples live in ../shared/data beside the project; CLUSTERLOB_SHARED_DATA points
# elsewhere (for example from a git worktree)
SHARED_DATA = Path(os.environ.get("CLUSTERLOB_SHARED_DATA") or ROOT.parent / "shared" / "data")


def shared_file(*parts) -> Path:
    """Path of a real sample in ../shared/data; skip the test (with the reason) when absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real market-data sample {path} is absent (it lives in ../shared/data beside the project)")
    return path
