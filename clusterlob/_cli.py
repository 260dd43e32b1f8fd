"""What every ``python -m clusterlob.<stage>`` command shares: a one-line usage error."""
from __future__ import annotations

import argparse
import sys

__all__ = ["OneLineParser", "os_error_line", "error_exit", "add_feature_arguments",
           "feature_settings_from_args"]


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


def add_feature_arguments(group) -> None:
    """Add the feature-setting flags (``--levels --window --z-clip --convention --asof
    --time-key``) to an argparse parser or argument group; `feature_settings_from_args` reads them."""
    from .features import ASOF_RULES, CONVENTIONS, TIME_KEYS, FeatureSettings

    d = FeatureSettings()
    group.add_argument("--levels", type=int, default=d.levels, help=f"book levels D, 1..25 (default {d.levels})")
    group.add_argument("--window", type=int, default=d.window, help=f"z-score window W in trades (default {d.window})")
    group.add_argument("--z-clip", type=float, default=d.z_clip, help=f"clip z to +-this (default {d.z_clip:g})")
    group.add_argument("--convention", choices=CONVENTIONS, default=d.convention,
                       help="paper: sbs = consumed side (default); aggressor: swapped")
    group.add_argument("--asof", choices=ASOF_RULES, default=d.asof,
                       help="strict: the snapshot before the trade (default); at_or_before")
    group.add_argument("--time-key", choices=TIME_KEYS, default=d.time_key,
                       help="local receive time (default) or exchange time")


def feature_settings_from_args(args):
    """The :class:`~clusterlob.features.FeatureSettings` of the flags of :func:`add_feature_arguments`."""
    from .features import FeatureSettings

    return FeatureSettings(levels=args.levels, window=args.window, z_clip=args.z_clip,
                           convention=args.convention, asof=args.asof, time_key=args.time_key)
