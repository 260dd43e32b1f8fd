"""How trades become features: :class:`FeatureSettings`, the one parameter object of the
features concern (its fields, validation, flags, dict form and cache key), and the names of the
features it can choose.  The computation is in :mod:`.build`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Iterable

from .. import _core
from .._io import check_choice, check_int, check_number
from ..errors import ParameterError
from ..tape.types import MAX_LEVELS

__all__ = ["ALL_FEATURES", "ASOF_RULES", "CONVENTIONS", "FEATURE_NAMES", "MAX_WINDOW", "TIME_KEYS",
           "FeatureSettings", "check_feature_names"]

FEATURE_NAMES = _core.FEATURE_COLUMNS     # ("v_rel", "sbs", "obs", "spread", "t_m", "t_age"), kernel order
ALL_FEATURES = FEATURE_NAMES + ("t_queue",)                            # every feature offered
CONVENTIONS = ("paper", "aggressor")
ASOF_RULES = ("strict", "at_or_before")
TIME_KEYS = ("local", "exchange")


# -- settings ------------------------------------------------------------------------------

MAX_WINDOW = 10_000_000     # trades: several busy days; more is a typo

_FEATURE_FLAGS = (   # (field, argparse type, help) of FeatureSettings.add_arguments
    ("levels", int, f"book levels D summed into sbs / obs, 1..{MAX_LEVELS}"),
    ("window", int, "z-score window W in trades"),
    ("z_clip", float, "clip z to +-this (inf: no clipping)"),
    ("convention", str, "paper: sbs is the consumed side; aggressor: sbs and obs swapped"),
    ("asof", str, "the snapshot strictly before the trade, or at or before it"),
    ("time_key", str, "local receive time or exchange time"),
)


def check_feature_names(names: Iterable[str]) -> tuple:
    """``names`` as a tuple after checking: known (:data:`ALL_FEATURES`), no repeats, >= 2."""
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise ParameterError(f"`features` must be a list of feature names, got {names!r}")
    names = tuple(names)
    unknown = [n for n in names if n not in ALL_FEATURES]
    if unknown:
        raise ParameterError(f"`features`: unknown feature {unknown[0]!r} "
                             f"(known: {', '.join(ALL_FEATURES)})")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ParameterError(f"`features`: {repeated[0]!r} is named more than once")
    if len(names) < 2:
        raise ParameterError(f"`features` must name at least two features, got {list(names)}")
    return names


@dataclass(frozen=True)
class FeatureSettings:
    """How trades become features; one object that travels through the whole pipeline.

    Parameters
    ----------
    levels : int
        D, book levels summed into ``sbs`` / ``obs``, 1..25.
    window : int
        W, trades in each rolling z-score window, >= 2.
    z_clip : float
        z-scores are clipped to +-z_clip (> 0; ``inf`` disables clipping).
    convention : {"paper", "aggressor"}
        "paper": sbs is the consumed (resting) side; "aggressor" swaps sbs and obs.
    asof : {"strict", "at_or_before"}
        Which snapshot a trade sees: the last one strictly before it, or at or before it.
    time_key : {"local", "exchange"}
        Time column used for ordering, the as-of join, ``t_m`` and ``t_age``.
    features : tuple of str
        Which of :data:`ALL_FEATURES` to compute, in this order; at least two, no repeats
        (default :data:`FEATURE_NAMES`).
    """

    levels: int = 5
    window: int = 100
    z_clip: float = 5.0
    convention: str = "paper"
    asof: str = "strict"
    time_key: str = "local"
    features: tuple = FEATURE_NAMES

    def __post_init__(self):
        object.__setattr__(self, "levels", check_int("levels", self.levels, 1, MAX_LEVELS))
        object.__setattr__(self, "window", check_int("window", self.window, 2))
        if self.window > MAX_WINDOW:     # its buffers are allocated up front
            raise ParameterError(f"`window` must be <= {MAX_WINDOW:,} trades, got {self.window}")
        object.__setattr__(self, "z_clip", check_number("z_clip", self.z_clip, 0, lo_open=True, finite=False))
        for name, allowed in (("convention", CONVENTIONS), ("asof", ASOF_RULES),
                              ("time_key", TIME_KEYS)):
            check_choice(name, getattr(self, name), allowed)
        object.__setattr__(self, "features", check_feature_names(self.features))

    def to_dict(self) -> dict:
        """Plain dict (JSON-able; an infinite ``z_clip`` becomes the string "inf")."""
        d = asdict(self)
        if math.isinf(d["z_clip"]):
            d["z_clip"] = "inf"
        if self.features == FEATURE_NAMES:
            del d["features"]       # the default set: keeps keys and files of earlier versions
        else:
            d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "feature settings") -> "FeatureSettings":
        """Inverse of :meth:`to_dict` (a JSON object or a TOML table; ``z_clip = "inf"`` is
        infinity); missing keys take their defaults; unknown keys and bad values are one-line
        errors naming ``source``."""
        if not isinstance(d, dict):
            raise ParameterError(f"{source}: expected a table of feature settings, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"{source}: unknown keys {unknown} "
                                 f"(known: {', '.join(sorted(known))})")
        d = dict(d)
        if d.get("z_clip") == "inf":
            d["z_clip"] = math.inf
        try:
            return cls(**d)
        except ParameterError as exc:
            raise ParameterError(f"{source}: {exc}") from None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, unset: bool = False,
                      selection: bool = False) -> None:
        """Add the feature flags (``--levels --window --z-clip --convention --asof --time-key``,
        and ``--features`` when ``selection``) to an argparse parser or argument group;
        :meth:`from_args` reads them back.

        ``unset``: the flags default to None, so that :meth:`from_args` can take the values not
        given from another object (``python -m clusterlob.compare`` takes a given model's).
        """
        d = cls()

        def default(name):
            return None if unset else getattr(d, name)

        def shown(value):
            return f"{value:g}" if isinstance(value, float) else str(value)

        if selection:
            parser.add_argument("--features", default=None, metavar="NAME,NAME,...",
                                help=f"features to compute and cluster on, of {', '.join(ALL_FEATURES)} "
                                     f"(default {','.join(FEATURE_NAMES)})")
        choices = {"convention": CONVENTIONS, "asof": ASOF_RULES, "time_key": TIME_KEYS}
        for name, kind, text in _FEATURE_FLAGS:
            parser.add_argument("--" + name.replace("_", "-"), type=kind, default=default(name),
                                metavar="|".join(choices[name]) if name in choices else name.upper(),
                                help=f"{text} (default {shown(getattr(d, name))})")

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: "FeatureSettings | None" = None) -> "FeatureSettings":
        """The settings of the flags of :meth:`add_arguments`; a flag left at None (``unset``)
        takes its value from ``base`` (default: the defaults)."""
        base = cls() if base is None else base
        given = {name: getattr(args, name) for name, _, _ in _FEATURE_FLAGS if getattr(args, name) is not None}
        chosen = getattr(args, "features", None)
        if chosen is not None:
            chosen = tuple(n.strip() for n in str(chosen).split(","))
            try:
                check_feature_names(chosen)
            except ParameterError as exc:
                raise ParameterError(f"--features {args.features!r}: {exc}") from None
            given["features"] = chosen
        return replace(base, **given)

    def tape_columns(self) -> tuple:
        """The trade columns the features read: pass them (and ``levels``) to
        :func:`clusterlob.tape.read_tape` to read nothing else."""
        return ("ts_local_us" if self.time_key == "local" else "ts_exch_us", "side", "amount")

    def key(self) -> str:
        """Stable 16-hex-digit hash of the settings, for cache file names."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]
