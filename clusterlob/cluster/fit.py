"""How K-Means++ is fitted: :class:`FitSettings`, the one parameter object of the clustering
concern, with its flags, its dict / TOML form and its validation, defined once.

Used by ``python -m clusterlob.cluster``, ``compare``, ``walkforward`` and the replay pipeline.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
import argparse

from .._io import check_int, check_number
from ..errors import ParameterError
from .roles import DEFAULT_MARGIN

__all__ = ["FitSettings", "MAX_K", "resolve_fit"]

#: Largest number of clusters (cluster ids are int8 in every label column).
MAX_K = 127

_HELP = {
    "k": f"clusters, 2..{MAX_K}",
    "n_init": "K-Means++ restarts, best inertia kept",
    "seed": "seed of all randomness",
    "fit_sample": "fit on N rows drawn with the seed, then label all rows; all: every row",
    "max_iter": "Lloyd iterations at most",
    "tol": "stop when the centres move less than this, relative",
    "margin": "role alignment margin in z",
}


@dataclass(frozen=True)
class FitSettings:
    """Settings of a K-Means++ fit and its role alignment.

    Attributes
    ----------
    k : int
        Number of clusters, 2..127 (cluster ids are int8).
    n_init : int
        Independent K-Means++ seedings; the lowest inertia is kept.
    seed : int
        Seed of all randomness (>= 0).
    fit_sample : int or None
        Fit on this many rows drawn with the seed, then label every row; None: all rows.
    max_iter : int
        Lloyd iterations at most.
    tol : float
        Relative centre movement below which the iterations stop.
    margin : float
        Rule-alignment margin, z units (any finite number; negative gives every role a cluster).
    """

    k: int = 3
    n_init: int = 3
    seed: int = 0
    fit_sample: int | None = None
    max_iter: int = 300
    tol: float = 1e-4
    margin: float = DEFAULT_MARGIN

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "k", check_int("k", self.k, 2, MAX_K))
        set_(self, "n_init", check_int("n_init", self.n_init, 1))
        set_(self, "seed", check_int("seed", self.seed, 0))
        set_(self, "fit_sample", check_int("fit_sample", self.fit_sample, 1, none_ok=True))
        set_(self, "max_iter", check_int("max_iter", self.max_iter, 1))
        set_(self, "tol", check_number("tol", self.tol, 0))
        set_(self, "margin", check_number("margin", self.margin))
        if self.n_init > 1000:      # a typo that would run for days
            raise ParameterError(f"`n_init` must be an integer in 1..1000, got {self.n_init!r}")
        if self.max_iter > 1_000_000:      # a typo that would run for days
            raise ParameterError(f"`max_iter` must be an integer in 1..1_000_000, got {self.max_iter!r}")
        if self.fit_sample is not None and self.fit_sample < self.k:
            raise ParameterError(f"`fit_sample` must be >= `k` ({self.k}), got {self.fit_sample}")

    def to_dict(self) -> dict:
        """Every setting by name (the TOML / JSON form)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "fit settings") -> "FitSettings":
        """Build from a mapping (a JSON object or a TOML table; missing keys take their defaults,
        ``fit_sample = "all"`` is None); unknown keys and bad values are one-line errors naming
        ``source``."""
        if not isinstance(d, dict):
            raise ParameterError(f"{source}: expected a table of fit settings, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"{source}: unknown fit setting `{unknown[0]}` (known: {', '.join(sorted(known))})")
        d = dict(d)
        if d.get("fit_sample") == "all":     # TOML has no null: "all" means every row
            d["fit_sample"] = None
        try:
            return cls(**d)
        except ParameterError as exc:
            raise ParameterError(f"{source}: {exc}") from None

    def replace(self, **changes: Any) -> "FitSettings":
        """A copy with some settings changed (validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser | argparse._ArgumentGroup, defaults: "FitSettings | None" = None) -> None:
        """Add ``--k --n-init --seed --fit-sample --max-iter --tol --margin`` to an argparse parser
        or argument group; :meth:`from_args` reads them back."""
        d = defaults or cls()
        for name, kind in (("k", int), ("n_init", int), ("seed", int), ("fit_sample", str),
                           ("max_iter", int), ("tol", float), ("margin", float)):
            value = getattr(d, name)
            shown = "all rows" if value is None else f"{value:g}" if kind is float else str(value)
            parser.add_argument("--" + name.replace("_", "-"), type=kind, default=value,
                                metavar="N|all" if name == "fit_sample" else None,
                                help=f"{_HELP[name]} (default {shown})")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "FitSettings":
        """The settings of the flags of :meth:`add_arguments`."""
        sample = args.fit_sample
        if isinstance(sample, str):
            if sample == "all":
                sample = None
            else:
                try:
                    sample = int(sample)
                except ValueError:
                    raise ParameterError(f"`--fit-sample` must be an integer or 'all', got {sample!r}") from None
        return cls(k=args.k, n_init=args.n_init, seed=args.seed, fit_sample=sample, max_iter=args.max_iter,
                   tol=args.tol, margin=args.margin)


def resolve_fit(fit: FitSettings | None, legacy: dict, where: str) -> FitSettings:
    """The :class:`FitSettings` of a library call that takes ``fit=`` and, for compatibility,
    the older keyword arguments (``k=3, seed=0, ...``, the fields of FitSettings): one or the
    other, never both; neither gives ``FitSettings()``."""
    if legacy:
        if fit is not None:
            raise ParameterError(f"{where}: give either `fit` or the keyword arguments "
                                 f"{', '.join(sorted(legacy))}, not both")
        return FitSettings.from_dict(dict(legacy), source=where)
    if fit is None:
        return FitSettings()
    if not isinstance(fit, FitSettings):
        raise ParameterError(f"`fit` must be a FitSettings, got {type(fit).__name__}")
    return fit
