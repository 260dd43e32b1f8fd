"""The project's exception types.

Every error a user can cause is a :class:`ClusterlobError` whose message is one line
naming the file, column or parameter and the offending value; the command-line entry
points print that line and exit non-zero instead of showing a traceback.
"""

__all__ = ["ClusterlobError", "TapeError", "ParameterError"]


class ClusterlobError(Exception):
    """Base class of every error caused by user input or user data."""


class TapeError(ClusterlobError, ValueError):
    """Input market data (a file, a column, a row) is missing, malformed or inconsistent."""


class ParameterError(ClusterlobError, ValueError):
    """A parameter is outside its allowed range."""
