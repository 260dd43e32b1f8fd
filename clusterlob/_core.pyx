# cython: language_level=3
"""clusterlob's compiled hot loops, and nothing else.

Compiler directives are set once, in ``setup.py`` (``CLUSTERLOB_DEBUG=1`` at build time
turns bounds checking back on).  Each kernel lives in its own ``_kernels/*.pxi`` file,
included below, so this file reads as the table of contents of the compiled code.
Kernels take typed memoryviews and fill buffers that Python allocated; loop control and
validation stay in Python.  Every kernel has a plain twin in ``tests/twins/`` (one module per
stage; the replay's are still ``tests/reference_replay.py``).
"""

cdef extern from *:
    """
    #ifndef CLUSTERLOB_DEBUG_BUILD
    #define CLUSTERLOB_DEBUG_BUILD 0
    #endif
    """
    int CLUSTERLOB_DEBUG_BUILD


def build_info():
    """Return how this extension was built: ``{"debug": bool}`` (bounds checking on)."""
    return {"debug": bool(CLUSTERLOB_DEBUG_BUILD)}


# -- the project's exception types -----------------------------------------------------------
# Defined here, at the bottom of the import tree, so a kernel can raise them without importing
# any module of the package; ``clusterlob.errors`` re-exports them (that is where users import
# them from).

class ClusterlobError(Exception):
    """Base class of every error caused by user input or user data."""


class TapeError(ClusterlobError, ValueError):
    """Input market data (a file, a column, a row) is missing, malformed or inconsistent."""


class ParameterError(ClusterlobError, ValueError):
    """A parameter is outside its allowed range."""


for _cls in (ClusterlobError, TapeError, ParameterError):
    _cls.__module__ = "clusterlob.errors"


# -- kernels ------------------------------------------------------------------------------
include "_kernels/tape.pxi"
include "_kernels/signals.pxi"
include "_kernels/book_flow.pxi"
include "_kernels/kmeans.pxi"
include "_kernels/rolling.pxi"
include "_kernels/features.pxi"
include "_kernels/binance.pxi"
include "_kernels/binance_scan.pxi"
include "_kernels/l2_rows.pxi"
include "_kernels/importance.pxi"
include "_kernels/accumulator.pxi"
include "_kernels/replay.pxi"
include "_kernels/online.pxi"
include "_kernels/online_gateway.pxi"
