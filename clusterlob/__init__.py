"""clusterlob: cluster market order flow (ClusterLOB) and turn it into trading signals.

The data's journey, one package per stage:

``tape`` (read, validate, store) -> ``features`` -> ``cluster`` (K-Means++, roles) ->
``signals`` (OFI, IC) -> ``walkforward`` -> ``replay`` (the market maker and its exchange)
-> ``sweep`` (grids of market-maker configs, strategy selection on past days).

Each command is a package's ``__main__``: ``python -m clusterlob.replay`` (the main job),
``convert``, ``synth``, ``features``, ``cluster``, ``compare``, ``ic``, ``walkforward``,
``inventory``, ``sweep``.  See README.md.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

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

#: Modules that moved into a stage package, by their former name.  ``import clusterlob.model``
#: (and ``from clusterlob.model import load_model``) keeps working: the former name is the
#: same module object as the new one, imported when first asked for.
MOVED_MODULES = {
    "clusterlob.tape_writer": "clusterlob.tape.writer",
    "clusterlob.validate": "clusterlob.tape.validate",
    "clusterlob.readers": "clusterlob.tape.readers",
    "clusterlob.kmeans": "clusterlob.cluster.kmeans",
    "clusterlob.model": "clusterlob.cluster.model",
    "clusterlob.roles": "clusterlob.cluster.roles",
    "clusterlob.importance": "clusterlob.cluster.importance",
    "clusterlob.ic_study": "clusterlob.signals.study",
    "clusterlob.timeframes": "clusterlob.signals.timeframes",
    "clusterlob.strategy": "clusterlob.replay.strategy",
    "clusterlob.accumulator": "clusterlob.replay.accumulator",
    "clusterlob.online": "clusterlob.replay",
    "clusterlob.gateway": "clusterlob.replay.gateway",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a former module name (or a submodule of one) and hands back the moved module."""

    def __init__(self):
        self._specs: dict = {}

    def find_spec(self, fullname, path=None, target=None):
        new = self._new_name(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    @staticmethod
    def _new_name(fullname):
        for old, new in MOVED_MODULES.items():
            if fullname == old or fullname.startswith(old + "."):
                return new + fullname[len(old):]
        return None

    def create_module(self, spec):
        module = importlib.import_module(self._new_name(spec.name))
        self._specs[spec.name] = module.__spec__     # the import system overwrites it; put it back
        return module

    def exec_module(self, module):
        for name, real in list(self._specs.items()):
            if real.name == module.__name__:
                module.__spec__ = real
                del self._specs[name]


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModuleFinder())   # before the path finder: one module object per file
