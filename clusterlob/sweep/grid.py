"""Strategy grids: every combination of listed :class:`StrategyConfig` values, and the clusters
to label the trades with.

A grid file (TOML)::

    [strategy]                      # any StrategyConfig field (and `mapping`); a list is swept,
    mapping = ["inverted", "traditional"]     # a single value is fixed
    skew_ticks = [10, 30, 50]
    theta = 2.0

    [fit]                           # clusters fit on the `train_days` days before each day
    train_days = 1                  # (FitSettings fields: k, n_init, seed, fit_sample, ...)
    k = 3

    [features]                      # FeatureSettings fields of that fit (default settings)

or, instead of ``[fit]``, fitted model file(s): ``model = "model.json"`` or ``model =
["a.json", "b.json"]`` (top level; paths relative to the grid file; several files are one
more grid dimension).  ``skip_invalid = true`` (top level) counts and reports the
combinations :class:`StrategyConfig` rejects instead of refusing the grid.

The fields are read from ``dataclasses.fields(StrategyConfig)``, so a field added to the
config is a grid dimension without a change here.  Every error is one line naming the file,
the field and the offending value; a rejected combination is named by its grid coordinates.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from .._typing import PathLike
from ..cluster.fit import FitSettings
from .._io import read_toml
from ..errors import ParameterError
from ..features.settings import FeatureSettings
from ..replay.strategy import ROLE_PRESETS, StrategyConfig

__all__ = ["Grid", "GridPoint", "ModelSpec", "load_grid", "make_grid", "MAX_POINTS"]

#: A grid larger than this is refused (a typo in a list, most likely).
MAX_POINTS = 1_000_000
_RESERVED = ("strategy", "model", "fit", "features", "skip_invalid")


@dataclass(frozen=True)
class GridPoint:
    """One combination: its index (grid order), its coordinates and the config."""

    index: int
    coords: tuple          # ((field, value index, value), ...) of the swept fields, in grid order
    config: StrategyConfig

    @property
    def label(self) -> str:
        """``skew_ticks=10, mapping=inverted`` (the swept values; ``default`` without any)."""
        return ", ".join(f"{name}={value}" for name, _, value in self.coords) or "default"

    @property
    def where(self) -> str:
        """Grid coordinates for messages: ``#3 (skew_ticks[1]=30, theta[0]=1)``."""
        return _where(self.index, self.coords)

    def values(self) -> dict:
        return {name: value for name, _, value in self.coords}


def _where(index: int, coords: tuple) -> str:
    inner = ", ".join(f"{name}[{i}]={value!r}" for name, i, value in coords)
    return f"#{index} ({inner})" if inner else f"#{index}"


@dataclass(frozen=True)
class ModelSpec:
    """Where the clusters come from: model files, or a fit on the days before each day."""

    files: tuple = ()
    fit: FitSettings | None = None
    train_days: int = 1
    features: FeatureSettings = field(default_factory=FeatureSettings)

    def to_dict(self) -> dict:
        if self.files:
            return {"files": list(self.files)}
        return {"fit": None if self.fit is None else self.fit.to_dict(), "train_days": self.train_days, "features": self.features.to_dict()}


@dataclass(frozen=True)
class Grid:
    """A parsed grid.

    Attributes
    ----------
    axes : tuple of (str, tuple)
        The swept fields and their values, in file order.
    fixed : dict
        Fields given one value.
    points : tuple of GridPoint
        Every valid combination, in grid order (the last axis varies fastest).
    rejected : tuple of str
        Combinations StrategyConfig refused (only with ``skip_invalid``), with the reason.
    models : ModelSpec
    source : str
    """

    axes: tuple
    fixed: dict
    points: tuple
    rejected: tuple
    models: ModelSpec
    source: str = "grid"

    def __len__(self) -> int:
        return len(self.points)

    def to_dict(self) -> dict:
        return {"source": self.source, "axes": {name: list(values) for name, values in self.axes},
                "fixed": dict(self.fixed), "points": len(self.points), "rejected": list(self.rejected),
                "models": self.models.to_dict()}

    def key(self) -> str:
        """Hash of the configs and the model spec (what the results depend on)."""
        doc = {"points": [p.config.to_dict() for p in self.points], "models": self.models.to_dict()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _kind(default) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, (int, float)):
        return "number"
    if isinstance(default, str):
        return "str"
    return "any"


def _check_value(source: str, name: str, position: str, value, kind: str) -> None:
    ok = {"bool": lambda v: isinstance(v, bool),
          "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "str": lambda v: isinstance(v, str),
          "any": lambda v: True}[kind]
    if not ok(value):
        what = {"bool": "true or false", "number": "a number", "str": "a string"}[kind]
        raise ParameterError(f"{source}: `{name}`{position} must be {what}, got {value!r}")


def make_grid(doc: dict, *, source: str = "grid", base_dir: Path | None = None) -> Grid:
    """Build a :class:`Grid` from the TOML document's dict (see the module doc)."""
    if not isinstance(doc, dict):
        raise ParameterError(f"{source}: expected a table, got {type(doc).__name__}")
    doc = dict(doc)
    strategy = doc.pop("strategy", {})
    if not isinstance(strategy, dict):
        raise ParameterError(f"{source}: [strategy] must be a table, got {strategy!r}")
    model = doc.pop("model", None)
    fit_doc = doc.pop("fit", None)
    features_doc = doc.pop("features", None)
    skip_invalid = doc.pop("skip_invalid", False)
    if not isinstance(skip_invalid, bool):
        raise ParameterError(f"{source}: `skip_invalid` must be true or false, got {skip_invalid!r}")
    top = {k: v for k, v in doc.items()}
    both = sorted(set(top) & set(strategy))
    if both:
        raise ParameterError(f"{source}: `{both[0]}` is given both at top level and in [strategy]")
    fields_doc = {**top, **strategy}

    defaults = StrategyConfig()
    kinds = {f.name: _kind(getattr(defaults, f.name)) for f in dataclasses.fields(StrategyConfig)}
    kinds["mapping"] = "str"
    axes, fixed = [], {}
    for name, value in fields_doc.items():
        if name not in kinds:
            raise ParameterError(f"{source}: unknown strategy field `{name}` (known: "
                                 f"{', '.join(sorted(kinds))}; tables: [strategy], [fit], [features], "
                                 f"model, skip_invalid)")
        if isinstance(value, list):
            if not value:
                raise ParameterError(f"{source}: `{name}` is an empty list: give at least one value")
            for i, v in enumerate(value):
                _check_value(source, name, f"[{i}]", v, kinds[name])
            if len(set(map(repr, value))) != len(value):
                raise ParameterError(f"{source}: `{name}` lists a value twice: {value!r}")
            axes.append((name, tuple(value)))
        else:
            _check_value(source, name, "", value, kinds[name])
            fixed[name] = value
    if "mapping" in fixed or any(n == "mapping" for n, _ in axes):
        values = [fixed["mapping"]] if "mapping" in fixed else dict(axes)["mapping"]
        for v in values:
            if v not in ROLE_PRESETS and v != "custom":
                raise ParameterError(f"{source}: `mapping` must be one of {sorted(ROLE_PRESETS)}, got {v!r}")

    total = 1
    for _, values in axes:
        total *= len(values)
    if total > MAX_POINTS:
        raise ParameterError(f"{source}: {total:,} combinations, more than {MAX_POINTS:,}")
    points: list[GridPoint] = []
    rejected = []
    for combo_index, combo in enumerate(itertools.product(*(range(len(v)) for _, v in axes))):
        coords = tuple((name, i, values[i]) for (name, values), i in zip(axes, combo))
        where = f"{source}: grid point {_where(combo_index, coords)}"
        try:
            config = StrategyConfig.from_dict({**fixed, **{n: v for n, _, v in coords}}, source=where)
        except ParameterError as exc:
            if not skip_invalid:
                raise ParameterError(f"{exc} (set skip_invalid = true to skip such combinations)") from None
            rejected.append(str(exc))
            continue
        points.append(GridPoint(len(points), coords, config))
    if not points:
        raise ParameterError(f"{source}: every one of the {total} combinations is rejected "
                             f"(first: {rejected[0]})")
    return Grid(tuple(axes), fixed, tuple(points), tuple(rejected),
                _models(source, model, fit_doc, features_doc, base_dir), source)


def _models(source: str, model, fit_doc, features_doc, base_dir) -> ModelSpec:
    if model is not None and (fit_doc is not None or features_doc is not None):
        raise ParameterError(f"{source}: give `model` (fitted files) or [fit] / [features], not both")
    if model is not None:
        files = model if isinstance(model, list) else [model]
        if not files or not all(isinstance(f, str) and f for f in files):
            raise ParameterError(f"{source}: `model` must be a file name or a non-empty list of them, got {model!r}")
        resolved = []
        for f in files:
            path = Path(f)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            if not path.is_file():
                raise ParameterError(f"{source}: model file {path} does not exist")
            resolved.append(str(path))
        if len(set(resolved)) != len(resolved):
            raise ParameterError(f"{source}: `model` lists a file twice")
        return ModelSpec(files=tuple(resolved))
    fit_doc = dict(fit_doc or {})
    if not isinstance(fit_doc, dict):
        raise ParameterError(f"{source}: [fit] must be a table")
    train_days = fit_doc.pop("train_days", 1)
    if isinstance(train_days, bool) or not isinstance(train_days, int) or train_days < 1:
        raise ParameterError(f"{source}: [fit] `train_days` must be an integer >= 1, got {train_days!r}")
    fit = FitSettings.from_dict(fit_doc, source=f"{source} [fit]")
    features = _features(source, features_doc)
    return ModelSpec(fit=fit, train_days=train_days, features=features)


def _features(source: str, doc) -> FeatureSettings:
    if doc is None:
        return FeatureSettings()
    try:
        return FeatureSettings.from_dict(doc)
    except ParameterError as exc:
        raise ParameterError(f"{source} [features]: {exc}") from None


def load_grid(path: PathLike) -> Grid:
    """Read a grid TOML file (see the module doc)."""
    path = Path(path)
    doc = read_toml(path, "grid file")
    return make_grid(doc, source=f"grid file {path}", base_dir=path.parent)
