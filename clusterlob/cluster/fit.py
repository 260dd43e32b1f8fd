"""How K-Means++ is fitted: :class:`FitSettings`, the one parameter object of the clustering
concern, with its flags, its dict / TOML form and its validation, defined once.

Used by ``python -m clusterlob.cluster``, ``compare``, ``walkforward`` and the replay pipeline.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import ParameterError
from .roles import DEFAULT_MARGIN

__all__ = ["FitSettings"]

_HELP = {
    "k": "clusters",
    "n_init": "K-Means++ restarts, best inertia kept",
    "seed": "seed of all randomness",
    "fit_sample": "fit on N rows drawn with the seed, then label all rows (default: all rows)",
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
        Rule-alignment margin, z units.
    """

    k: int = 3
    n_init: int = 1
    seed: int = 0
    fit_sample: int | None = None
    max_iter: int = 300
    tol: float = 1e-4
    margin: float = DEFAULT_MARGIN

    def __post_init__(self):
        def whole(name, lo, hi=None, none_ok=False):
            v = getattr(self, name)
            if none_ok and v is None:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
                rule = f">= {lo}" if hi is None else f"in {lo}..{hi}"
                raise ParameterError(f"`{name}` must be an integer {rule}, got {v!r}")

        whole("k", 2, 127)
        whole("n_init", 1, 1000)        # restarts; more is a typo that would run for days
        whole("seed", 0)
        whole("fit_sample", 1, none_ok=True)
        whole("max_iter", 1, 1_000_000)
        for name in ("tol", "margin"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v == float("inf"):
                raise ParameterError(f"`{name}` must be a finite number >= 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.fit_sample is not None and self.fit_sample < self.k:
            raise ParameterError(f"`fit_sample` must be >= `k` ({self.k}), got {self.fit_sample}")

    def to_dict(self) -> dict:
        """Every setting by name (the TOML / JSON form)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "fit settings") -> "FitSettings":
        """Build from a mapping; unknown keys and bad values are one-line errors naming ``source``."""
        if not isinstance(d, dict):
            raise ParameterError(f"{source}: expected a table of fit settings, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"{source}: unknown fit setting `{unknown[0]}` (known: {', '.join(sorted(known))})")
        try:
            return cls(**d)
        except ParameterError as exc:
            raise ParameterError(f"{source}: {exc}") from None

    def replace(self, **changes) -> "FitSettings":
        """A copy with some settings changed (validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def add_arguments(cls, parser, defaults: "FitSettings | None" = None) -> None:
        """Add ``--k --n-init --seed --fit-sample --max-iter --tol --margin`` to an argparse parser
        or argument group; :meth:`from_args` reads them back."""
        d = defaults or cls()
        parser.add_argument("--k", type=int, default=d.k, help=f"{_HELP['k']} (default {d.k})")
        parser.add_argument("--n-init", type=int, default=d.n_init, help=f"{_HELP['n_init']} (default {d.n_init})")
        parser.add_argument("--seed", type=int, default=d.seed, help=f"{_HELP['seed']} (default {d.seed})")
        parser.add_argument("--fit-sample", default=d.fit_sample, metavar="N|all", help=_HELP["fit_sample"])
        parser.add_argument("--max-iter", type=int, default=d.max_iter,
                            help=f"{_HELP['max_iter']} (default {d.max_iter})")
        parser.add_argument("--tol", type=float, default=d.tol, help=f"{_HELP['tol']} (default {d.tol:g})")
        parser.add_argument("--margin", type=float, default=d.margin,
                            help=f"{_HELP['margin']} (default {d.margin:g})")

    @classmethod
    def from_args(cls, args) -> "FitSettings":
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
