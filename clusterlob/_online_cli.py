"""``python -m clusterlob.replay --online``: the replay CLI's pipeline through the online engine.

The batch CLI (:mod:`clusterlob._replay_cli`) builds features for the whole tape, fits or
loads the model, labels every trade and replays the replay days in one compiled pass.  With
``--online`` the fitting stays the same (it needs the training days' features anyway), the
rolling windows are warmed up on the days read before the first replayed day, and the
replayed days are played event by event through :class:`clusterlob.online.OnlineEngine`
and the :class:`clusterlob.gateway.SimulatedGateway`; the summary printed is the batch one,
and the numbers are equal (tested).  ``--tape`` may then also be a raw Binance stream
recording (with ``--model`` and ``--tick-size``), decoded line by line as if it were live.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .errors import ParameterError, TapeError

__all__ = ["add_arguments", "run_pipeline_online"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The two flags ``--online`` adds to ``python -m clusterlob.replay``."""
    parser.add_argument("--online", action="store_true",
                        help="replay event by event through the online engine (clusterlob.online) "
                             "and the simulated gateway; --tape may then be a raw Binance recording")
    parser.add_argument("--tick-size", type=float, default=None, metavar="FLOAT",
                        help="price increment of a raw recording (--online with a recording file)")


def run_pipeline_online(args, progress):
    """What :func:`clusterlob._replay_cli.run_pipeline` does, through the online path."""
    from . import _replay_cli as cli
    from .features import build_features
    from .model import load_model
    from .online import replay_online
    from .tape import US_PER_DAY, Tape, day_start_us, read_manifest, read_tape

    config = cli._config(args)
    configs = ([config.with_mapping("inverted"), config.with_mapping("traditional")]
               if args.compare else [config])
    if args.tape and Path(args.tape).is_file():
        return _recording(args, configs, progress)
    if args.tick_size is not None:
        raise ParameterError("--tick-size is for a raw recording; a tape carries its own tick")
    tape_dir = Path(args.tape) if args.tape else cli.DEFAULT_TAPE
    if not args.tape and not (cli.DEFAULT_TAPE / "manifest.json").is_file():
        raise TapeError(f"the embedded default tape is not in this installation ({cli.DEFAULT_TAPE}); "
                        f"give --tape DIR")
    manifest = read_manifest(tape_dir)
    available = [d["date"] for d in manifest["days"]]
    train, replay_days = cli._split_days(args, available)
    first, last = min(train + replay_days), max(train + replay_days)
    read = [d for d in available if first <= d <= last]
    if replay_days != [d for d in read if replay_days[0] <= d <= replay_days[-1]]:
        raise ParameterError("--online replays consecutive days only (the engine cannot skip the "
                             "training days in between); give --replay-days FROM:TO")
    progress(f"reading {tape_dir} ({first}..{last})")
    tape = read_tape(tape_dir, f"{first}:{last}")
    features_mod, model_mod = cli._pipeline_modules()
    if args.model:
        model = load_model(args.model)
        if model.settings.levels > tape.book.levels:
            raise ParameterError(f"model file {args.model} was fit on features of {model.settings.levels} "
                                 f"book levels, but tape {tape_dir} has {tape.book.levels}")
        fitted_on = model.source.get("days") if isinstance(model.source, dict) else None
        sample = cli.sample_of(fitted_on, replay_days)
    else:
        settings = features_mod.FeatureSettings()
        progress("building the training days' features")
        feats = build_features(tape, settings)
        trade_day = tape.trades.ts_local_us[feats.trade_index] // US_PER_DAY
        fit_rows = feats.valid & np.isin(trade_day, [day_start_us(d) // US_PER_DAY for d in train])
        if int(fit_rows.sum()) < 3:
            raise TapeError(f"only {int(fit_rows.sum())} valid feature rows on the training days "
                            f"{train[0]}..{train[-1]}: too few to fit 3 clusters")
        progress(f"fitting K-Means++ (k=3, seed {args.seed}) on {int(fit_rows.sum()):,} trades")
        model, _ = model_mod.fit_model(feats.z[fit_rows], settings, k=3, n_init=args.n_init,
                                       seed=args.seed, source={"tape": str(tape_dir), "days": train})
        sample = cli.sample_of(train, replay_days)
    # the rolling windows as they stand just before the first replayed event
    start_us = day_start_us(replay_days[0])
    before_t = tape.trades.ts_local_us < start_us
    before_b = tape.book.ts_local_us < start_us
    state = None
    if before_t.any() or before_b.any():
        progress("warming the rolling windows up on the days before the replay")
        warm = Tape(tape.instrument, tape.trades.take(before_t), tape.book.take(before_b),
                    [d for d in read if d < replay_days[0]])
        state = build_features(warm, model.settings).state
    replay_tape = Tape(tape.instrument, tape.trades.take(~before_t), tape.book.take(~before_b), replay_days)
    results, runs = [], []
    for cfg in configs:
        progress(f"replaying {len(replay_tape.trades):,} trades and {len(replay_tape.book):,} book "
                 f"updates online ({cfg.mapping} mapping)")
        run = replay_online(replay_tape, model, cfg, state=state)
        runs.append(run)
        results.append(run.result)
    context = {
        "tape": str(tape_dir), "instrument": tape.instrument.to_dict(),
        "train_days": train, "replay_days": replay_days, "sample": sample,
        "model": _model_context(args, model), "replay_trade_roles": _role_counts(runs[0].role),
        "path": "online",
    }
    return context, results


def _recording(args, configs, progress):
    from . import _replay_cli as cli
    from .model import load_model
    from .online import replay_online
    from .tape import day_of_us

    if not args.model:
        raise ParameterError("--online with a raw recording needs --model MODEL.json (there are no "
                             "training days to fit on)")
    if args.tick_size is None or not args.tick_size > 0:
        raise ParameterError(f"--online with a raw recording needs --tick-size > 0 (the messages do not "
                             f"carry it), got {args.tick_size}")
    if args.train_days or args.replay_days:
        raise ParameterError("--train-days / --replay-days do not apply to a raw recording (it is "
                             "replayed whole)")
    model = load_model(args.model)
    results, runs = [], []
    for cfg in configs:
        progress(f"decoding and replaying {args.tape} online ({cfg.mapping} mapping)")
        run = replay_online(args.tape, model, cfg, tick_size=args.tick_size)
        runs.append(run)
        results.append(run.result)
    s = results[0].summary
    days = sorted({day_of_us(s.first_ts_us), day_of_us(s.last_ts_us)})
    fitted_on = model.source.get("days") if isinstance(model.source, dict) else None
    sample = cli.sample_of(fitted_on, days)
    context = {
        "tape": str(args.tape),
        "instrument": {"exchange": "binance-futures", "symbol": runs[0].source.get("symbol") or "?",
                       "tick_size": args.tick_size},
        "train_days": [], "replay_days": days, "sample": sample,
        "model": _model_context(args, model), "replay_trade_roles": _role_counts(runs[0].role),
        "path": "online (raw recording)",
    }
    return context, results


def _model_context(args, model) -> dict:
    from ._replay_cli import _role_name

    return {"file": args.model, "k": model.k, "seed": model.seed, "inertia": model.inertia,
            "roles": {int(j): _role_name(r) for j, r in enumerate(model.roles)}}


def _role_counts(roles) -> dict:
    counts = {name: int((roles == code).sum()) for code, name in
              enumerate(("directional", "opportunistic", "passive"))}
    counts["unassigned"] = int((roles < 0).sum())
    return counts
