"""The files a sweep and a selection write: a Parquet table, Markdown, JSON, pictures.

Sweep (``OUT``): ``results.parquet`` (one row per model, day and config), ``summary.md`` (the
best configs over the swept days), ``summary.json``, ``heatmap.png`` (two swept fields,
needs matplotlib).  Selection (``OUT``): ``selection.md``, ``selection.json``,
``windows.csv`` (one row per window), ``equity.parquet`` (the out-of-sample equity of the
selected config and the benchmarks), ``equity.png`` (needs matplotlib).  All atomically;
``tasks/``, ``models/`` and ``cache/`` are the resumable working files.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._io import atomic_write, write_text
from .._typing import PathLike
from ..report import markdown_table, to_jsonable

if TYPE_CHECKING:
    from .run import SweepResult
    from .select import SelectionResult

__all__ = ["SWEEP_FILES", "SELECTION_FILES", "write_sweep", "write_selection", "sweep_markdown",
           "selection_markdown"]

SWEEP_FILES = ("results.parquet", "summary.md", "summary.json", "heatmap.png")
SELECTION_FILES = ("selection.md", "selection.json", "windows.csv", "equity.parquet", "equity.png")


def _parquet(path: Path, columns: dict, force: bool, currency: str = "") -> Path:
    """Columns as a Parquet table; ``currency`` (of every PnL column) in the schema metadata."""
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    if currency:
        table = table.replace_schema_metadata({"currency": currency})
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp), force=force)


def _json(path: Path, doc, force: bool) -> Path:
    return write_text(path, json.dumps(to_jsonable(doc), indent=2) + "\n", force=force)


def _fmt(x, digits=4):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else x


# -- sweep --------------------------------------------------------------------------------------

def sweep_markdown(result: SweepResult, top: int = 10, plot_note: str = "") -> str:
    g = result.grid
    rows = result.by_config()
    lines = [f"# Sweep: {len(g.points)} config(s) x {len(result.days)} day(s)", "",
             f"Tape `{result.tape}`; days {', '.join(result.days) or '-'}; {len(result.rows)} replays"
             + (f"; PnL in {result.currency}" if result.currency else "") + ".",
             f"Grid: {', '.join(f'{n} ({len(v)})' for n, v in g.axes) or 'no swept field'}; fixed: "
             f"{g.fixed or '-'}.",
             "Models: " + "; ".join(f"{m['name']} ({m['file']})" for m in result.models) + ".", ""]
    if g.rejected:
        lines += [f"{len(g.rejected)} combination(s) rejected by StrategyConfig and skipped "
                  f"(first: {g.rejected[0]}).", ""]
    if result.skipped:
        lines += ["## Skipped", ""] + [f"- {s}" for s in result.skipped] + [""]
    lines += ["**In sample.** These are the best configs *on the days swept*: choosing one here and "
              "reporting its result on the same days is a look-ahead. `python -m clusterlob.sweep --select` "
              "chooses on past days and reports the next day.", ""]
    header = ["rank", "model", "config", "swept values", "days", "PnL", "spread", "drift", "fees", "fills",
              "volume", "max |inv|", "Sharpe/min", "minutes"]

    def table(key):
        ordered = sorted(rows, key=lambda r: (-(r[key] if math.isfinite(r[key]) else -math.inf),
                                              r["model"], r["config"]))[:top]
        return markdown_table(header, [[i + 1, r["model"], r["config"], r["label"], r["days"], r["pnl_total"],
                                        r["spread_capture"], r["inventory_drift"], r["fees"], r["fills"],
                                        r["volume"], r["largest_inventory"], _fmt(r["sharpe_1min"]), r["minutes"]]
                                       for i, r in enumerate(ordered)],
                              digits=4, align=["r", "r", "r", "l"] + ["r"] * 10)

    lines += [f"## Best {min(top, len(rows))} by Sharpe (one-minute equity changes pooled over the days)", "",
              table("sharpe_1min"), "", f"## Best {min(top, len(rows))} by PnL", "", table("pnl_total"), ""]
    if plot_note:
        lines += [plot_note, ""]
    lines += [f"Timing: {result.timing}", ""]
    return "\n".join(lines)


def _heatmap(result, path: Path, force: bool, axes=None) -> str:
    g = result.grid
    numeric = [(n, v) for n, v in g.axes if all(isinstance(x, (int, float)) for x in v)]
    chosen = [a for a in g.axes if axes and a[0] in axes] if axes else (numeric[:2] if len(numeric) >= 2 else g.axes[:2])
    if len(chosen) < 2:
        return "heatmap.png not drawn: the grid sweeps fewer than two fields."
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "heatmap.png not drawn: matplotlib is not installed (pip install 'clusterlob[plot]')."
    (xn, xv), (yn, yv) = chosen[0], chosen[1]
    rows = result.by_config()
    best = max(rows, key=lambda r: r["sharpe_1min"] if math.isfinite(r["sharpe_1min"]) else -math.inf)
    fixed = {n: v for n, v in g.points[best["config"]].values().items() if n not in (xn, yn)}
    grid = np.full((len(yv), len(xv)), np.nan)
    for r in rows:
        if r["model"] != best["model"]:
            continue
        vals = g.points[r["config"]].values()
        if all(vals[n] == v for n, v in fixed.items()):
            grid[list(yv).index(vals[yn]), list(xv).index(vals[xn])] = r["sharpe_1min"]
    fig, ax = plt.subplots(figsize=(3.2 + 0.9 * len(xv), 1.8 + 0.6 * len(yv)))
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="RdYlGn")
    ax.set_xticks(range(len(xv)), [str(v) for v in xv])
    ax.set_yticks(range(len(yv)), [str(v) for v in yv])
    ax.set_xlabel(xn)
    ax.set_ylabel(yn)
    for i in range(len(yv)):
        for j in range(len(xv)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="Sharpe / minute (pooled)")
    ax.set_title(("slice at " + ", ".join(f"{k}={v}" for k, v in fixed.items())) if fixed else "all configs",
                 fontsize=8)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), force=force)
    finally:
        plt.close(fig)
    return "![heat map](heatmap.png)"


def write_sweep(result: SweepResult, out_dir: PathLike, *, force: bool = False,
                heatmap_axes: Sequence[str] | None = None) -> list[Path]:
    """Write ``results.parquet``, ``summary.md``, ``summary.json`` and ``heatmap.png``."""
    out = Path(out_dir)
    written = [_parquet(out / "results.parquet", result.columns(), force, result.currency)]
    note = _heatmap(result, out / "heatmap.png", force, heatmap_axes)
    if note.startswith("!"):
        written.append(out / "heatmap.png")
    written.append(_json(out / "summary.json", {**result.to_dict(), "plot": note}, force))
    written.append(write_text(out / "summary.md", sweep_markdown(result, plot_note=note), force=force))
    return written


# -- selection ----------------------------------------------------------------------------------

def selection_markdown(result: SelectionResult, plot_note: str = "") -> str:
    d = result.to_dict()
    c = d["counts"]
    iv = d["is_vs_oos"]
    pbo = d["pbo"]
    lines = [f"# Walk-forward strategy selection: {len(result.grid.points)} config(s), "
             f"train {result.train_days} day(s), test the next", "",
             f"Tape `{result.tape}`" + (f" (PnL in {result.currency})" if result.currency else "")
             + f". Objective **{result.objective}** over the training days"
             + (f", at least {result.min_fills} training fills" if result.min_fills else "") + ". "
             f"Windows: {c['windows']}, selected {c['selected']}, skipped {c['skipped']}, "
             f"no eligible config {c['no_eligible']}.", ""]
    if result.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in result.notes] + [""]
    lines += ["## Which config each window chose", ""]
    rows = []
    for w in result.windows:
        b = w.benchmarks
        rows.append([w.index, f"{w.train_days[0]}..{w.train_days[-1]}", w.test_day, w.status,
                     w.chosen_label or (w.reason or ""), w.chosen_mapping, _fmt(w.is_sharpe), _fmt(w.is_pnl),
                     w.is_fills, w.oos_pnl, _fmt(w.oos_sharpe), w.oos_fills,
                     f"{w.oos_rank}/{w.n_configs}" if w.oos_rank else "",
                     *(b.get(k, {}).get("pnl", "") for k in ("default", "all_trades_ofi", "symmetric"))])
    lines.append(markdown_table(["window", "train", "test", "status", "chosen", "mapping", "IS Sharpe",
                                 "IS PnL", "IS fills", "OOS PnL", "OOS Sharpe", "OOS fills", "OOS rank",
                                 "default PnL", "all-trades OFI PnL", "symmetric PnL"], rows, digits=4,
                                align=["r", "l", "l", "l", "l", "l"] + ["r"] * 10))
    lines += ["", "IS: pooled over the training days with that window's clusters; OOS: the test day. "
              "OOS rank: the chosen config's rank by the objective among all configs on the test day "
              "(computed for this diagnostic only; it never feeds a choice).", "",
              "## Out-of-sample equity (test days concatenated)", ""]
    lines.append(markdown_table(["strategy", "final PnL"], [[k, v] for k, v in d["final_equity"].items()],
                                digits=2, align=["l", "r"]))
    lines += ["", "## What the choice cost", "",
              f"- chosen configs' mean Sharpe per minute: in sample {_fmt(iv['is_sharpe_mean'])}, out of sample "
              f"{_fmt(iv['oos_sharpe_mean'])}; mean PnL per training day {_fmt(iv['is_pnl_per_day_mean'])}, "
              f"per test day {_fmt(iv['oos_pnl_mean'])}",
              f"- mean out-of-sample rank of the chosen config: {_fmt(iv['oos_rank_mean'])} of {iv['n_configs']}",
              f"- probability of backtest overfitting (CSCV, S = {pbo['n_blocks']}, {pbo['n_splits']} splits, "
              f"{pbo['rows']} hourly PnL rows x {pbo['candidates']} configs over the test days): "
              f"**{_fmt(pbo['pbo'])}**; median logit {_fmt(pbo['logit_median'])}; share of splits whose "
              f"in-sample best lost out of sample {_fmt(pbo['share_oos_below_zero'])}"
              + (f" ({pbo['note']})" if pbo["note"] else ""), "",
              "## Chosen mapping", "",
              ", ".join(f"{k}: {v} window(s)" for k, v in d["chosen_mapping"].items()) or "none chosen", ""]
    mp = d.get("mapping_pairs") or {}
    if mp.get("pairs"):
        lines += [f"Diagnostic (never used to choose): on the test days, configs equal but for the mapping "
                  f"({mp['pairs']} day x config pairs): " + ", ".join(f"{k} better in {v}" for k, v in mp["wins"].items())
                  + f", ties {mp['ties']}; total test-day PnL " + ", ".join(f"{k} {v:,.2f}" for k, v in mp["pnl"].items())
                  + ".", ""]
    if plot_note:
        lines += [plot_note, ""]
    lines += [f"Timing: {result.timing}", ""]
    return "\n".join(lines)


def _equity_plot(result, path: Path, force: bool) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "equity.png not drawn: matplotlib is not installed (pip install 'clusterlob[plot]')."
    eq = result.equity
    if not len(eq["ts_us"]):
        return "equity.png not drawn: no window was traded."
    x = np.arange(len(eq["ts_us"])) / 60.0
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for k, style in (("selected", "-"), ("default", "--"), ("all_trades_ofi", "-."), ("symmetric", ":")):
        ax.plot(x, eq[k], style, label=k, lw=1.6 if k == "selected" else 1.1)
    starts = np.flatnonzero(np.diff(eq["window"])) + 1
    for s in starts:
        ax.axvline(x[s], color="0.85", lw=0.6, zorder=0)
    ax.set_xlabel("hours of test days (concatenated)")
    ax.set_ylabel(f"PnL ({result.currency or 'settlement currency'})")
    ax.set_title("Out-of-sample equity: config chosen on past days vs benchmarks")
    ax.legend()
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), force=force)
    finally:
        plt.close(fig)
    return "![equity](equity.png)"


def write_selection(result: SelectionResult, out_dir: PathLike, *, force: bool = False) -> list[Path]:
    """Write ``selection.md``, ``selection.json``, ``windows.csv``, ``equity.parquet``, ``equity.png``."""
    from ..report import write_csv
    out = Path(out_dir)
    written = [_parquet(out / "equity.parquet", {k: np.asarray(v) for k, v in result.equity.items()}, force,
                        result.currency)]
    header = ["window", "train_first", "train_last", "test_day", "status", "reason", "chosen", "chosen_label",
              "chosen_mapping", "is_value", "is_pnl", "is_sharpe", "is_fills", "oos_pnl", "oos_sharpe", "oos_fills",
              "oos_rank", "n_configs", "default_pnl", "all_trades_ofi_pnl", "symmetric_pnl"]
    rows = [[w.index, w.train_days[0], w.train_days[-1], w.test_day, w.status, w.reason or "", w.chosen,
             w.chosen_label, w.chosen_mapping, w.is_value, w.is_pnl, w.is_sharpe, w.is_fills, w.oos_pnl,
             w.oos_sharpe, w.oos_fills, w.oos_rank]
            + [w.n_configs] + [w.benchmarks.get(k, {}).get("pnl") for k in ("default", "all_trades_ofi", "symmetric")]
            for w in result.windows]
    written.append(write_csv(out / "windows.csv", header, rows, overwrite=force))
    note = _equity_plot(result, out / "equity.png", force)
    if note.startswith("!"):
        written.append(out / "equity.png")
    written.append(_json(out / "selection.json", {**result.to_dict(), "plot": note}, force))
    written.append(write_text(out / "selection.md", selection_markdown(result, note), force=force))
    return written
