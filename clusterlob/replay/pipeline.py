"""The main job as one library call: fit on the training days, label, replay.

:func:`run_pipeline` reads a tape, builds the features, fits K-Means++ on the training days
(or takes a fitted model), aligns the clusters to roles, labels the replayed days' trades
with that model and replays the market maker over them, with the batch engine
(:func:`clusterlob.replay.replay`, one compiled pass) or event by event through the online
engine (:func:`clusterlob.replay.online.replay_online`); both give the same numbers (tested).
It returns a :class:`PipelineRun`: the model, the sample verdict and one
:class:`~clusterlob.replay.engine.ReplayResult` per role mapping.  ``python -m
clusterlob.replay`` is this call plus a printed summary (:mod:`.summary`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..cluster.fit import FitSettings
from ..cluster.model import ClusterModel, fit_model, label_trades, load_model
from ..cluster.roles import ROLE_NAMES
from .._typing import Days, PathLike
from ..errors import ParameterError, TapeError
from ..features.build import FeatureSettings, build_features
from ..tape.store import US_PER_DAY, Tape, day_of_us, day_start_us, parse_days, read_manifest, read_tape
from .engine import ReplayResult, replay
from .online_replay import OnlineReplay, replay_online
from .strategy import StrategyConfig

__all__ = ["DEFAULT_TAPE", "ENGINES", "PipelineRun", "run_pipeline", "sample_of", "split_days"]

#: The embedded default tape (``data/default_tape`` of the source tree).
DEFAULT_TAPE = Path(__file__).resolve().parent.parent.parent / "data" / "default_tape"
#: The two replay paths: one compiled pass, or event by event through the online engine.
ENGINES = ("batch", "online")

Progress = Callable[[str], None]


@dataclass(frozen=True, eq=False)
class PipelineRun:
    """What :func:`run_pipeline` did and found.

    Attributes
    ----------
    tape : str
        The tape directory (or raw recording) replayed.
    instrument : dict
        Exchange, symbol, tick and lot size.
    train_days, replay_days : list of str
        Days the model was fit on (empty for a given model) and days replayed.
    sample : str
        ``out_of_sample``, ``in_sample``, ``future_fit`` (fit on days after the first replayed
        one: look-ahead) or ``unknown`` (a model file that does not say): see :func:`sample_of`.
    model : ClusterModel
    model_file : str or None
        The model file given, or None when the model was fit here.
    trade_roles : dict
        Replayed trades per role (``directional``, ``opportunistic``, ``passive``, ``unassigned``).
    engine : str
        ``batch`` or ``online`` (``online (raw recording)`` for a recording file).
    results : dict
        One :class:`ReplayResult` per role mapping, by mapping name, in the order run.
    """

    tape: str
    instrument: dict
    train_days: list[str]
    replay_days: list[str]
    sample: str
    model: ClusterModel
    model_file: str | None
    trade_roles: dict
    engine: str
    results: dict[str, ReplayResult] = field(default_factory=dict)

    @property
    def result(self) -> ReplayResult:
        """The first (or only) mapping's result."""
        return next(iter(self.results.values()))

    def context(self) -> dict:
        """Everything but the results, as plain data (the head of ``summary.json``)."""
        out = {
            "tape": self.tape, "instrument": self.instrument,
            "train_days": list(self.train_days), "replay_days": list(self.replay_days), "sample": self.sample,
            "model": {"file": self.model_file, "k": self.model.k, "seed": self.model.seed,
                      "inertia": self.model.inertia,
                      "roles": {int(j): _role_name(r) for j, r in enumerate(self.model.roles)}},
            "replay_trade_roles": dict(self.trade_roles),
        }
        if self.engine != "batch":
            out["path"] = self.engine
        return out

    def to_dict(self) -> dict:
        """The context plus ``runs``: one result dict per mapping."""
        return {**self.context(), "runs": [r.to_dict() for r in self.results.values()]}


def sample_of(fit_days: Sequence[str] | None, replay_days: Sequence[str]) -> str:
    """``"in_sample"`` when a replayed day was fit on, ``"future_fit"`` when the model was fit
    on a day after the first replayed one (look-ahead), ``"out_of_sample"`` when every fit day
    comes before every replayed day, ``"unknown"`` without fit days."""
    if not fit_days:
        return "unknown"
    fit = {str(d) for d in fit_days}
    if fit & {str(d) for d in replay_days}:
        return "in_sample"
    if max(fit) > min(str(d) for d in replay_days):
        return "future_fit"
    return "out_of_sample"


def split_days(available: Sequence[str], train_days: Days = None, replay_days: Days = None, *, have_model: bool = False,
               tape: str = "tape") -> tuple[list, list]:
    """The training and replayed days of a tape with days ``available``.

    ``train_days`` / ``replay_days`` are day specs (``FROM:TO``, one day, or a list).  Without
    ``train_days`` the first day is the training day; without ``replay_days`` every day after
    the training days is replayed (with a given model: every day).
    """
    if not available:
        raise TapeError(f"{tape} has no days")
    if have_model:
        if train_days:
            raise ParameterError("`train_days` cannot be used with a fitted model (it is already fit)")
        return [], parse_days(_spec(replay_days), list(available))
    train = parse_days(_spec(train_days), list(available)) if train_days else list(available[:1])
    if replay_days:
        chosen = parse_days(_spec(replay_days), list(available))
    else:
        chosen = [d for d in available if d > max(train)]
        if not chosen:
            raise ParameterError(f"no day after the training days ({train[0]}..{train[-1]}) is left "
                                 f"to replay: the tape has {len(available)} day(s); give the replay days")
    return train, chosen


def _spec(spec):
    return spec.split(",") if isinstance(spec, str) and "," in spec else spec


def _role_name(code) -> str:
    return ROLE_NAMES[code] if 0 <= code < len(ROLE_NAMES) else "unassigned"


def _role_counts(roles: np.ndarray) -> dict:
    counts = {name: int((roles == code).sum()) for code, name in enumerate(ROLE_NAMES)}
    counts["unassigned"] = int((roles < 0).sum())
    return counts


def _days(days) -> str:
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"


def run_pipeline(tape: PathLike | None = None, train_days: Days = None, replay_days: Days = None, config: StrategyConfig | None = None, *,
                 fit: FitSettings | None = None, features: FeatureSettings | None = None,
                 model: ClusterModel | str | Path | None = None, engine: str = "batch",
                 mappings: Sequence[str] | None = None, tick_size: float | None = None,
                 progress: Progress | None = None) -> PipelineRun:
    """Fit on the training days, label, replay: the main job.

    Parameters
    ----------
    tape : str or Path, optional
        A tape directory (default: the embedded default tape).  With ``engine="online"`` it may
        also be a raw Binance stream recording file (then ``model`` and ``tick_size`` are needed).
    train_days, replay_days : str or list of str, optional
        Day specs (``FROM:TO``, one day, ``a,b``).  Default: fit on the first day, replay every
        later day (with a given model: replay every day).
    config : StrategyConfig, optional
        The market maker (default :class:`StrategyConfig()`).
    fit : FitSettings, optional
        How K-Means++ is fit (default :class:`FitSettings()`: k=3, seed 0).
    features : FeatureSettings, optional
        Feature settings of the fit (default :class:`FeatureSettings()`); a given model uses its own.
    model : ClusterModel or path, optional
        A fitted model (or its JSON file) instead of fitting one.
    engine : {"batch", "online"}
    mappings : sequence of str, optional
        Role-mapping presets to run on the same events (e.g. ``("inverted", "traditional")``);
        default: ``config`` as given.
    tick_size : float, optional
        Price increment of a raw recording (the messages do not carry it).
    progress : callable, optional
        Called with one line of text at each step.

    Returns
    -------
    PipelineRun
    """
    say = progress or (lambda line: None)
    if engine not in ENGINES:
        raise ParameterError(f"`engine` must be one of {list(ENGINES)}, got {engine!r}")
    config = StrategyConfig() if config is None else config
    if not isinstance(config, StrategyConfig):
        raise ParameterError(f"`config` must be a StrategyConfig, got {type(config).__name__}")
    fit = FitSettings() if fit is None else fit
    if not isinstance(fit, FitSettings):
        raise ParameterError(f"`fit` must be a FitSettings, got {type(fit).__name__}")
    configs = [config.with_mapping(m) for m in mappings] if mappings else [config]
    model_file = str(model) if isinstance(model, (str, Path)) else None
    tape_dir = Path(tape) if tape is not None else DEFAULT_TAPE
    if tape is not None and tape_dir.is_file():
        if engine != "online":
            raise ParameterError(f"--tape {tape_dir} is a file, not a tape directory: convert it with "
                                 f"`python -m clusterlob.convert`, or replay a raw Binance recording with --online")
        return _recording(tape_dir, train_days, replay_days, configs, model, model_file, tick_size, say)
    if tick_size is not None:
        raise ParameterError("--tick-size is for a raw recording; a tape carries its own tick")
    if tape is None and not (DEFAULT_TAPE / "manifest.json").is_file():
        raise TapeError(f"the embedded default tape is not in this installation ({DEFAULT_TAPE}); it ships "
                        f"with the source tree (pip install -e .), or give --tape DIR")
    manifest = read_manifest(tape_dir)
    available = [d["date"] for d in manifest["days"]]
    train, chosen = split_days(available, train_days, replay_days, have_model=model is not None,
                               tape=f"tape {tape_dir}")
    first, last = min(train + chosen), max(train + chosen)
    if engine == "online":
        read = [d for d in available if first <= d <= last]
        if chosen != [d for d in read if chosen[0] <= d <= chosen[-1]]:
            raise ParameterError("--online replays consecutive days only (the engine cannot skip the "
                                 "training days in between); give --replay-days FROM:TO")
    say(f"reading {tape_dir} ({first}..{last})")
    data = read_tape(tape_dir, f"{first}:{last}")
    feats = None
    if model is not None:
        if not isinstance(model, ClusterModel):
            model = load_model(model)
        if model.settings.levels > data.book.levels:
            raise ParameterError(f"model file {model_file} was fit on features of {model.settings.levels} book "
                                 f"levels, but tape {tape_dir} has {data.book.levels}")
        fitted_on = model.source.get("days") if isinstance(model.source, dict) else None
        sample = sample_of(fitted_on, chosen)
    else:
        settings = FeatureSettings() if features is None else features
        say("building features")
        feats = build_features(data, settings)
        trade_day = data.trades.ts_local_us[feats.trade_index] // US_PER_DAY
        fit_rows = feats.valid & np.isin(trade_day, [day_start_us(d) // US_PER_DAY for d in train])
        n_fit = int(fit_rows.sum())
        if n_fit < fit.k:
            raise TapeError(f"only {n_fit} valid feature rows on the training days "
                            f"{train[0]}..{train[-1]}: too few to fit {fit.k} clusters")
        say(f"fitting K-Means++ (k={fit.k}, seed {fit.seed}) on {n_fit:,} trades of {_days(train)}")
        model, _ = fit_model(feats.z[fit_rows], settings, k=fit.k, n_init=fit.n_init, max_iter=fit.max_iter,
                             tol=fit.tol, seed=fit.seed, fit_sample=fit.fit_sample, margin=fit.margin,
                             source={"tape": str(tape_dir), "days": train})
        sample = sample_of(train, chosen)
    if engine == "batch":
        if feats is None:
            say("building features")
            feats = build_features(data, model.settings)
        results, roles = _replay_batch(data, feats, model, chosen, configs, say)
        path = "batch"
    else:
        results, roles = _replay_online(data, model, chosen, configs, say)
        path = "online"
    return PipelineRun(str(tape_dir), data.instrument.to_dict(), train, chosen, sample, model, model_file,
                       _role_counts(roles), path, results)


def _replay_batch(data: Tape, feats, model: ClusterModel, chosen: list, configs: list, say: Progress):
    labels = label_trades(feats, model)
    day_index = [day_start_us(d) // US_PER_DAY for d in chosen]
    keep_trades = np.isin(data.trades.ts_local_us // US_PER_DAY, day_index)
    keep_book = np.isin(data.book.ts_local_us // US_PER_DAY, day_index)
    replay_tape = Tape(data.instrument, data.trades.take(keep_trades), data.book.take(keep_book), chosen)
    roles = labels.role[keep_trades]
    results = {}
    for cfg in configs:
        say(f"replaying {len(replay_tape.trades):,} trades and {len(replay_tape.book):,} book "
            f"updates ({cfg.mapping} mapping)")
        results[cfg.mapping] = replay(replay_tape, roles, cfg)
    return results, roles


def _replay_online(data: Tape, model: ClusterModel, chosen: list, configs: list, say: Progress):
    # the rolling windows as they stand just before the first replayed event
    start_us = day_start_us(chosen[0])
    before_t = data.trades.ts_local_us < start_us
    before_b = data.book.ts_local_us < start_us
    state = None
    if before_t.any() or before_b.any():
        say("warming the rolling windows up on the days before the replay")
        warm = Tape(data.instrument, data.trades.take(before_t), data.book.take(before_b),
                    [d for d in data.days if d < chosen[0]])
        state = build_features(warm, model.settings).state
    replay_tape = Tape(data.instrument, data.trades.take(~before_t), data.book.take(~before_b), chosen)
    results, runs = {}, []
    for cfg in configs:
        say(f"replaying {len(replay_tape.trades):,} trades and {len(replay_tape.book):,} book "
            f"updates online ({cfg.mapping} mapping)")
        run: OnlineReplay = replay_online(replay_tape, model, cfg, state=state)
        runs.append(run)
        results[cfg.mapping] = run.result
    return results, runs[0].role


def _recording(path: Path, train_days, replay_days, configs, model, model_file, tick_size, say: Progress):
    if model is None:
        raise ParameterError("--online with a raw recording needs --model MODEL.json (there are no "
                             "training days to fit on)")
    if tick_size is None or not tick_size > 0:
        raise ParameterError(f"--online with a raw recording needs --tick-size > 0 (the messages do not "
                             f"carry it), got {tick_size}")
    if train_days or replay_days:
        raise ParameterError("--train-days / --replay-days do not apply to a raw recording (it is "
                             "replayed whole)")
    if not isinstance(model, ClusterModel):
        model = load_model(model)
    results, runs = {}, []
    for cfg in configs:
        say(f"decoding and replaying {path} online ({cfg.mapping} mapping)")
        run = replay_online(str(path), model, cfg, tick_size=tick_size)
        runs.append(run)
        results[cfg.mapping] = run.result
    s = next(iter(results.values())).summary
    days = sorted({day_of_us(s.first_ts_us), day_of_us(s.last_ts_us)})
    fitted_on = model.source.get("days") if isinstance(model.source, dict) else None
    instrument = {"exchange": "binance-futures", "symbol": runs[0].source.get("symbol") or "?",
                  "tick_size": tick_size}
    return PipelineRun(str(path), instrument, [], days, sample_of(fitted_on, days), model, model_file,
                       _role_counts(runs[0].role), "online (raw recording)", results)
