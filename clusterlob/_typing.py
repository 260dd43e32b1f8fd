"""Type aliases used in the public signatures (for type checkers and readers; no run-time role).

``PathLike`` a file or folder (``"data/default_tape"`` or a ``pathlib.Path``); ``Days`` the days of a
tape (None for all, ``"FROM:TO"``, one ``"YYYY-MM-DD"`` or a sequence of day strings); ``Say`` a
progress callable taking one line of text (a library never prints); ``Seed`` randomness (None, an
integer >= 0 or a ``numpy.random.Generator``).
"""
from __future__ import annotations

import os
from typing import Callable, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ArrayLike", "Days", "PathLike", "Say", "Seed"]

PathLike = Union[str, "os.PathLike[str]"]
Days = Union[str, Sequence[str], None]
Say = Callable[[str], object]      # what it returns is ignored (Progress.step returns the line)
Seed = Union[int, np.integer, np.random.Generator, None]
