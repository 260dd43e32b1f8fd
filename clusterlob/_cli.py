"""What every ``python -m clusterlob.<stage>`` command shares: a one-line usage error."""
from __future__ import annotations

import argparse

__all__ = ["OneLineParser"]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error (bad number, unknown flag, missing argument) is one line on
    stderr, ``error: ... (see --help)``, with exit status 2, like the commands' other errors."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")
