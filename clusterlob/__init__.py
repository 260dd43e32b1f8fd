"""clusterlob: cluster market order flow (ClusterLOB) and turn it into trading signals.

The data's journey, one module per stage: ``tape`` (read, validate, store) ->
``features`` -> ``kmeans`` / ``roles`` -> ``signals`` / ``ic`` -> ``walkforward`` ->
``replay``.  See README.md for the commands.
"""
__version__ = "0.1.0"

try:
    from . import _core  # noqa: F401  (the compiled hot loops)
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "clusterlob's compiled extension clusterlob._core is not built "
        f"({exc}); install the package with `pip install .` (or `pip install -e .`) "
        "from the project folder, which compiles it"
    ) from exc

from .errors import ClusterlobError, ParameterError, TapeError
from .tape import Book, Instrument, Tape, TapeWriter, Trades, iter_days, read_tape, write_tape

__all__ = [
    "__version__",
    "ClusterlobError",
    "ParameterError",
    "TapeError",
    "Book",
    "Instrument",
    "Tape",
    "TapeWriter",
    "Trades",
    "iter_days",
    "read_tape",
    "write_tape",
]
