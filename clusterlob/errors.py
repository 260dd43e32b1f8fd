"""The project's exception types.

Every error a user can cause is a :class:`ClusterlobError` whose message is one line
naming the file, column or parameter and the offending value; the command-line entry
points print that line and exit non-zero instead of showing a traceback.

The classes are defined in the compiled module (the bottom of the import tree), so that
kernels raise them without importing anything of the package; this is where users import
them from.
"""
from ._core import ClusterlobError, ParameterError, TapeError

__all__ = ["ClusterlobError", "TapeError", "ParameterError"]
