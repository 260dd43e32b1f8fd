"""What every ``python -m clusterlob.<stage>`` command shares: a one-line usage error."""
from __future__ import annotations

import argparse
import sys

__all__ = ["OneLineParser", "os_error_line", "error_exit"]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error (bad number, unknown flag, missing argument) is one line on
    stderr, ``error: ... (see --help)``, with exit status 2, like the commands' other errors."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def os_error_line(exc: OSError) -> str:
    """The one stderr line for an operating-system error (a folder that cannot be created, a
    file that cannot be read): ``error: PATH: reason``."""
    where = exc.filename if exc.filename is not None else ""
    return f"error: {where}: {exc.strerror or exc}" if where else f"error: {exc.strerror or exc}"


def error_exit(exc: Exception) -> int:
    """Print the one stderr line for a user error (a :class:`~clusterlob.errors.ClusterlobError`
    or an ``OSError``) and return the commands' exit status for it, 2."""
    print(os_error_line(exc) if isinstance(exc, OSError) else f"error: {exc}", file=sys.stderr)
    return 2
