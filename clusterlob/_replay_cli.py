"""``python -m clusterlob.replay``: the whole pipeline, then the market-making replay.

With no arguments: read the embedded default tape (``data/default_tape``), build the
features, fit K-Means++ on the first day, align the clusters to roles, label the later
days' trades with that model (out of sample) and replay the market maker over them;
print a summary table.  See ``docs/replay.md`` for every line of the output.  With
``--online`` the replayed days go event by event through the online engine
(:mod:`clusterlob._online_cli`, ``docs/online.md``): the same summary, the same numbers.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._online_cli import add_arguments as add_online_arguments, run_pipeline_online
from ._cli import OneLineParser, error_exit
from .errors import ClusterlobError, ParameterError, TapeError
from .replay import ReplayResult, replay
from .report import to_jsonable, write_json
from .strategy import ROLE_PRESETS, StrategyConfig, load_config

DEFAULT_TAPE = Path(__file__).resolve().parent.parent / "data" / "default_tape"
OUTPUT_FILES = ("fills.parquet", "equity.parquet", "summary.json", "equity.png")

_HELP = {
    "skew_ticks": "largest quote skew in ticks",
    "theta": "inventory aversion, ticks per unit of inventory",
    "inventory_mode": "dynamic (theta relaxed by the alpha's confidence) or fixed",
    "min_half_ticks": "smallest half-spread in ticks",
    "half_spread_bps": "base half-spread, bps of the mid",
    "hazard_k": "spread widening per unit of hazard above the threshold",
    "hazard_threshold": "hazard below which the spread is not widened",
    "quote_size": "size of each quote (amount units)",
    "max_inventory": "no bid at or above +this inventory, no ask at or below -this",
    "maker_fee_bps": "maker fee in bps of notional (negative: rebate)",
    "requote_interval_us": "least time between quote decisions, us",
    "order_latency_us": "decision to quotes live at the exchange, us",
    "fill_mode": "cross (trade price beyond our quote) or touch (at or beyond)",
    "half_life_s": "half-life of the signal decay, s",
    "size_weight": "weight of a trade in the mean trade size",
    "signal_scale_trades": "signal unit, in mean trade sizes",
    "alpha_role": "role feeding the skew: directional, opportunistic, passive or none",
    "hazard_role": "role feeding the widening: directional, opportunistic, passive or none",
}


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m clusterlob.replay",
        description="Fit the clusters on the first part of a tape, then replay the market maker "
                    "on the rest, event by event (out of sample). With no arguments: the embedded "
                    "default tape.")
    p.add_argument("--tape", metavar="DIR", default=None,
                   help=f"tape directory (default: the embedded {DEFAULT_TAPE.parent.name}/{DEFAULT_TAPE.name})")
    p.add_argument("--model", metavar="MODEL.json", default=None,
                   help="use this fitted model (python -m clusterlob.cluster) instead of fitting one")
    p.add_argument("--train-days", metavar="SPEC", default=None,
                   help="days to fit the model on: FROM:TO, one day or a comma list (default: the first day)")
    p.add_argument("--replay-days", metavar="SPEC", default=None,
                   help="days to replay (default: every day after the training days; with --model, all days)")
    p.add_argument("--config", metavar="FILE.toml", default=None,
                   help="strategy parameters from a TOML file (flags below override it)")
    p.add_argument("--mapping", choices=sorted(ROLE_PRESETS), default=None,
                   help="role mapping preset (default inverted: alpha <- directional, hazard <- opportunistic)")
    p.add_argument("--compare", action="store_true",
                   help="run the inverted and the traditional mapping on the same events, side by side")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write fills.parquet, equity.parquet, summary.json (and equity.png with matplotlib)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--seed", type=int, default=0, help="seed of the K-Means++ fit (default 0)")
    p.add_argument("--n-init", type=int, default=1, help="K-Means++ restarts (default 1)")
    add_online_arguments(p)
    g = p.add_argument_group("strategy (defaults: clusterlob.strategy.StrategyConfig)")
    defaults = StrategyConfig()
    for f in dataclasses.fields(StrategyConfig):
        kind = int if f.type in ("int", int) else float if f.type in ("float", float) else str
        g.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None,
                       metavar=kind.__name__.upper(),
                       help=f"{_HELP[f.name]} (default {getattr(defaults, f.name)})")
    return p


def _config(args) -> StrategyConfig:
    base = load_config(args.config).to_dict() if args.config else StrategyConfig().to_dict()
    base.pop("mapping")
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(StrategyConfig)
             if getattr(args, f.name) is not None}
    if args.mapping:
        alpha, hazard = ROLE_PRESETS[args.mapping]
        for key, value in (("alpha_role", alpha), ("hazard_role", hazard)):
            if key in flags and flags[key] != value:
                raise ParameterError(f"--mapping {args.mapping} sets --{key.replace('_', '-')} {value}, "
                                     f"but --{key.replace('_', '-')} {flags[key]} was also given")
            flags[key] = value
    return StrategyConfig.from_dict({**base, **flags}, source="command line")


# -- the pipeline ---------------------------------------------------------------------------

def _pipeline_modules():
    """The feature and model stages, or a one-line error saying which are missing."""
    missing = []
    try:
        from . import features
    except ImportError:
        missing.append("clusterlob.features")
        features = None
    try:
        from . import model
    except ImportError:
        missing.append("clusterlob.model")
        model = None
    if missing:
        raise ParameterError(f"this installation lacks {', '.join(missing)}, which the pipeline needs")
    return features, model


def _split_days(args, available):
    from .tape import parse_days

    if not available:
        raise TapeError(f"tape {args.tape or DEFAULT_TAPE} has no days")
    if args.model:
        if args.train_days:
            raise ParameterError("--train-days cannot be used with --model (the model is already fit)")
        train = []
        replay_days = parse_days(_spec(args.replay_days), available)
    else:
        train = parse_days(_spec(args.train_days), available) if args.train_days else available[:1]
        if args.replay_days:
            replay_days = parse_days(_spec(args.replay_days), available)
        else:
            replay_days = [d for d in available if d > max(train)]
            if not replay_days:
                raise ParameterError(f"no day after the training days ({train[0]}..{train[-1]}) is left "
                                     f"to replay: the tape has {len(available)} day(s); give --replay-days")
    return train, replay_days


def _spec(spec):
    return spec.split(",") if spec and "," in spec else spec


def sample_of(fit_days, replay_days) -> str:
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


def run_pipeline(args, progress):
    """Read, featurise, fit (or load), label and replay; returns (context dict, results)."""
    from .tape import US_PER_DAY, Tape, day_start_us, read_manifest, read_tape

    config = _config(args)
    tape_dir = Path(args.tape) if args.tape else DEFAULT_TAPE
    if args.tape and tape_dir.is_file():
        raise ParameterError(f"--tape {tape_dir} is a file, not a tape directory: convert it with "
                             f"`python -m clusterlob.convert`, or replay a raw Binance recording with --online")
    if not args.tape and not (DEFAULT_TAPE / "manifest.json").is_file():
        raise TapeError(f"the embedded default tape is not in this installation ({DEFAULT_TAPE}); it ships "
                        f"with the source tree (pip install -e .), or give --tape DIR")
    manifest = read_manifest(tape_dir)
    available = [d["date"] for d in manifest["days"]]
    train, replay_days = _split_days(args, available)
    features_mod, model_mod = _pipeline_modules()
    first = min(train + replay_days)
    last = max(train + replay_days)
    progress(f"reading {tape_dir} ({first}..{last})")
    tape = read_tape(tape_dir, f"{first}:{last}")
    if args.model:
        model = model_mod.load_model(args.model)
        settings = model.settings
        if settings.levels > tape.book.levels:
            raise ParameterError(f"model file {args.model} was fit on features of {settings.levels} book "
                                 f"levels, but tape {tape_dir} has {tape.book.levels}")
        progress("building features")
        feats = features_mod.build_features(tape, settings)
        fitted_on = model.source.get("days") if isinstance(model.source, dict) else None
        sample = sample_of(fitted_on, replay_days)
    else:
        settings = features_mod.FeatureSettings()
        progress("building features")
        feats = features_mod.build_features(tape, settings)
        trade_day = tape.trades.ts_local_us[feats.trade_index] // US_PER_DAY
        fit_rows = feats.valid & np.isin(trade_day, [day_start_us(d) // US_PER_DAY for d in train])
        if int(fit_rows.sum()) < 3:
            raise TapeError(f"only {int(fit_rows.sum())} valid feature rows on the training days "
                            f"{train[0]}..{train[-1]}: too few to fit 3 clusters")
        progress(f"fitting K-Means++ (k=3, seed {args.seed}) on {int(fit_rows.sum()):,} trades of "
                 f"{_days(train)}")
        model, _ = model_mod.fit_model(feats.z[fit_rows], settings, k=3, n_init=args.n_init,
                                       seed=args.seed, source={"tape": str(tape_dir), "days": train})
        sample = sample_of(train, replay_days)
    labels = model_mod.label_trades(feats, model)
    replay_day_index = [day_start_us(d) // US_PER_DAY for d in replay_days]
    keep_trades = np.isin(tape.trades.ts_local_us // US_PER_DAY, replay_day_index)
    keep_book = np.isin(tape.book.ts_local_us // US_PER_DAY, replay_day_index)
    replay_tape = Tape(tape.instrument, tape.trades.take(keep_trades), tape.book.take(keep_book),
                       replay_days)
    roles = labels.role[keep_trades]
    configs = ([config.with_mapping("inverted"), config.with_mapping("traditional")]
               if args.compare else [config])
    results = []
    for cfg in configs:
        progress(f"replaying {len(replay_tape.trades):,} trades and {len(replay_tape.book):,} book "
                 f"updates ({cfg.mapping} mapping)")
        results.append(replay(replay_tape, roles, cfg))
    role_counts = {name: int((roles == code).sum()) for code, name in
                   enumerate(("directional", "opportunistic", "passive"))}
    role_counts["unassigned"] = int((roles < 0).sum())
    context = {
        "tape": str(tape_dir), "instrument": tape.instrument.to_dict(),
        "train_days": train, "replay_days": replay_days, "sample": sample,
        "model": {"file": args.model, "k": model.k, "seed": model.seed, "inertia": model.inertia,
                  "roles": {int(j): _role_name(r) for j, r in enumerate(model.roles)}},
        "replay_trade_roles": role_counts,
    }
    return context, results


def _role_name(code) -> str:
    from .roles import ROLE_NAMES
    return ROLE_NAMES[code] if 0 <= code < len(ROLE_NAMES) else "unassigned"


# -- output ----------------------------------------------------------------------------------

_ROWS = (  # (label, summary field, format)
    ("events", "events", "{:,}"),
    ("  trades", "trades", "{:,}"),
    ("  book updates", "book_updates", "{:,}"),
    ("quote decisions", "quote_decisions", "{:,}"),
    ("posts rejected (post-only)", "posts_rejected", "{:,}"),
    ("sides held by inventory limit", "inventory_limited", "{:,}"),
    ("fills", "fills", "{:,}"),
    ("  we bought / we sold", None, None),
    ("fill rate (fills / trades)", "fill_rate", "{:.4%}"),
    ("volume", "volume", "{:,.4f}"),
    ("notional", "notional", "{:,.2f}"),
    ("PnL total", "pnl_total", "{:+,.2f}"),
    ("  spread capture", "spread_capture", "{:+,.2f}"),
    ("  inventory drift", "inventory_drift", "{:+,.2f}"),
    ("  fees (paid; < 0 rebate)", "fees", "{:,.2f}"),
    ("ending inventory", "ending_inventory", "{:+,.4f}"),
    ("largest |inventory|", "largest_inventory", "{:,.4f}"),
    ("one-minute equity changes", "minutes", "{:,}"),
    ("Sharpe (per minute)", "sharpe_1min", "{:+.3f}"),
    ("Sharpe (annualised)", "sharpe_annualised", "{:+.2f}"),
)


def format_table(context: dict, results: list) -> str:
    inst = context["instrument"]
    days = context["replay_days"]
    where = ("the embedded default tape, data/default_tape" if Path(context["tape"]) == DEFAULT_TAPE
             else context["tape"])
    lines = [f"tape: {where} ({inst['exchange']} {inst['symbol']}, tick {inst['tick_size']:g})"]
    m = context["model"]
    roles = ", ".join(f"{j}={r}" for j, r in m["roles"].items())
    if m["file"]:
        lines.append(f"model: {m['file']} (k={m['k']}; clusters {roles})")
    else:
        lines.append(f"model: K-Means++ k={m['k']}, seed {m['seed']}, fitted on "
                     f"{_days(context['train_days'])}, inertia {m['inertia']:.6g}; clusters {roles}")
    verdict = {"out_of_sample": "OUT OF SAMPLE: no replayed day was used to fit the model",
               "in_sample": "IN SAMPLE: replayed days were used to fit the model (optimistic)",
               "future_fit": "NOT OUT OF SAMPLE: the model was fit on days after the first replayed "
                             "day (look-ahead)",
               "unknown": "sample unknown: the model file does not say which days it was fit on"}
    lines.append(f"replay: {_days(days)}, {verdict[context['sample']]}")
    rc = context["replay_trade_roles"]
    lines.append("replayed trades by role: " + ", ".join(f"{k} {v:,}" for k, v in rc.items()))
    cfg = results[0].config
    lines.append(f"strategy: skew {cfg.skew_ticks:g} ticks, theta {cfg.theta:g} ({cfg.inventory_mode}), "
                 f"half-spread max({cfg.min_half_ticks:g} ticks, {cfg.half_spread_bps:g} bps), "
                 f"size {cfg.quote_size:g}, limit {cfg.max_inventory:g}, fee {cfg.maker_fee_bps:g} bps, "
                 f"requote {cfg.requote_interval_us / 1000:g} ms, latency {cfg.order_latency_us / 1000:g} ms, "
                 f"fills {cfg.fill_mode}")
    header = [r.config.mapping for r in results]
    width = max(18, *(len(f"{r.config.alpha_role} / {r.config.hazard_role}") for r in results))
    lines.append("")
    lines.append(f"{'mapping':32}" + "".join(f"{h:>{width + 2}}" for h in header))
    lines.append(f"{'  alpha / hazard role':32}" + "".join(
        f"{r.config.alpha_role + ' / ' + r.config.hazard_role:>{width + 2}}" for r in results))
    for label, name, fmt in _ROWS:
        cells = []
        for r in results:
            s = r.summary
            if name is None:
                text = f"{s.buy_fills:,} / {s.sell_fills:,}"
            else:
                value = getattr(s, name)
                text = "n/a" if isinstance(value, float) and math.isnan(value) else fmt.format(value)
            cells.append(f"{text:>{width + 2}}")
        lines.append(f"{label:32}" + "".join(cells))
    return "\n".join(lines)


def _days(days) -> str:
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"


def _atomic(path: Path, write, force: bool) -> Path:
    if path.exists() and not force:
        raise ParameterError(f"output file {path} exists (use --force to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)       # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_outputs(out_dir: Path, context: dict, result: ReplayResult, force: bool):
    """Write fills.parquet, equity.parquet, summary.json and (with matplotlib) equity.png.

    Returns (paths written, notes), a note saying why the picture was skipped if it was.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    written = []
    for name, table in (("fills.parquet", result.fills.columns()), ("equity.parquet", result.equity.columns())):
        arrow = pa.table({k: pa.array(v) for k, v in table.items()})
        written.append(_atomic(out_dir / name, lambda tmp, t=arrow: pq.write_table(t, tmp), force))
    written.append(write_json(out_dir / "summary.json", {**context, **result.to_dict()}, overwrite=force))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written, [f"{out_dir / 'equity.png'} skipped: matplotlib is not installed "
                         f"(pip install clusterlob[plot])"]
    eq = result.equity
    hours = (eq.ts_us - eq.ts_us[0]) / 3.6e9
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    axes[0].plot(hours, eq.equity, label="PnL")
    axes[0].plot(hours, eq.spread_capture, label="spread capture")
    axes[0].plot(hours, eq.inventory_drift, label="inventory drift")
    axes[0].plot(hours, -eq.fees, label="-fees")
    axes[0].set_ylabel("quote currency")
    axes[0].set_title(f"{context['instrument']['symbol']} replay, {_days(context['replay_days'])}, "
                      f"{result.config.mapping} mapping ({context['sample'].replace('_', ' ')})")
    axes[0].legend()
    axes[1].plot(hours, eq.inventory, color="tab:orange", label="inventory")
    axes[1].set_ylabel("base units")
    axes[1].legend()
    axes[2].plot(hours, eq.mid, color="tab:green", label="mid")
    axes[2].set_ylabel("price")
    axes[2].set_xlabel("hours since the first replayed event")
    axes[2].legend()
    fig.tight_layout()
    written.append(_atomic(out_dir / "equity.png", lambda tmp: fig.savefig(tmp, format="png"), force))
    plt.close(fig)
    return written, []


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

    def progress(line):
        print(line, file=sys.stderr, flush=True)

    try:
        start = time.perf_counter()
        if args.out and not args.force:     # refuse before the work, not after
            for sub in (("inverted", "traditional") if args.compare else ("",)):
                existing = [n for n in OUTPUT_FILES if (Path(args.out) / sub / n).exists()]
                if existing:
                    raise ParameterError(f"output directory {Path(args.out) / sub} already has "
                                         f"{', '.join(existing)} (use --force to replace)")
        context, results = (run_pipeline_online if args.online else run_pipeline)(args, progress)
        written = []
        if args.out:
            for r in results:
                sub = Path(args.out) / (r.config.mapping if args.compare else "")
                paths, notes = write_outputs(sub, context, r, args.force)
                written += paths
                for note in notes:
                    progress(note)
        seconds = time.perf_counter() - start
        if args.json:
            doc = {**context, "runs": [r.to_dict() for r in results], "seconds": seconds,
                   "written": [str(p) for p in written]}
            print(json.dumps(to_jsonable(doc), indent=2))
        else:
            print(format_table(context, results))
            if written:
                print("wrote " + ", ".join(str(p) for p in written))
            progress(f"done in {seconds:.1f} s")
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    return 0
