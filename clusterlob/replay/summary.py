"""What a person reads of a replay: the summary table and the output files.

:func:`format_table` is the table ``python -m clusterlob.replay`` prints (every line is explained
in ``docs/replay.md``); :func:`write_outputs` writes ``fills.parquet``, ``equity.parquet``,
``summary.json`` and, with the plot extra, ``equity.png``.
"""
from __future__ import annotations

import math
from pathlib import Path

from .._io import atomic_write
from ..report import write_json
from .results import MIN_MARKS_ANNUALISED, ReplayResult
from .pipeline import DEFAULT_TAPE, PipelineRun

__all__ = ["OUTPUT_FILES", "format_table", "mark_text", "write_outputs"]

OUTPUT_FILES = ("fills.parquet", "equity.parquet", "summary.json", "equity.png")


def _pair(a: str, b: str, fmt: str):
    """A cell of two summary fields, "bid / ask" style."""
    def cell(s):
        x, y = getattr(s, a), getattr(s, b)
        return " / ".join("n/a" if isinstance(v, float) and math.isnan(v) else fmt.format(v) for v in (x, y))
    return cell


_ROWS = (  # (label, summary field or a function of the summary, format)
    ("events", "events", "{:,}"),
    ("  trades", "trades", "{:,}"),
    ("  book updates", "book_updates", "{:,}"),
    ("quote decisions", "quote_decisions", "{:,}"),
    ("  bid / ask quoted", _pair("bid_quoted_share", "ask_quoted_share", "{:.1%}"), None),
    ("  held by inventory limit", _pair("bid_limited_share", "ask_limited_share", "{:.1%}"), None),
    ("  withheld by post-only", _pair("bid_withheld_share", "ask_withheld_share", "{:.1%}"), None),
    ("  widened by hazard", "widened_share", "{:.1%}"),
    ("  mean quoted half-spread, ticks", "mean_half_spread_ticks", "{:,.1f}"),
    ("rejected on arrival (post-only)", "rejected_on_arrival", "{:,}"),
    ("time quoted bid / ask", _pair("bid_time_quoted", "ask_time_quoted", "{:.1%}"), None),
    ("  at the touch bid / ask", _pair("bid_time_at_touch", "ask_time_at_touch", "{:.1%}"), None),
    ("fills", "fills", "{:,}"),
    ("  we bought / we sold", _pair("buy_fills", "sell_fills", "{:,}"), None),
    ("  queue / touch", _pair("fills_queue", "fills_touch", "{:,}"), None),
    ("  trade / book through", _pair("fills_trade_through", "fills_book_through", "{:,}"), None),
    ("  mean queue ahead at a queue fill", "mean_queue_ahead", "{:,.4f}"),
    ("fill rate (fills / trades)", "fill_rate", None),
    ("markout 1 s / 10 s, ticks", _pair("markout_1s_ticks", "markout_10s_ticks", "{:+,.2f}"), None),
    ("markout 60 s, ticks (fills)", lambda s: ("n/a" if math.isnan(s.markout_60s_ticks) else
                                               f"{s.markout_60s_ticks:+,.2f}") + f" ({s.markout_fills:,})", None),
    ("volume", "volume", "{:,.4f}"),
    ("notional ({currency})", "notional", "{:,.<money>f}"),
    ("PnL total ({currency})", "pnl_total", "{:+,.<money>f}"),
    ("  spread capture", "spread_capture", "{:+,.<money>f}"),
    ("  inventory drift", "inventory_drift", "{:+,.<money>f}"),
    ("  fees (paid; < 0 rebate)", "fees", "{:,.<money>f}"),
    ("  funding (paid; < 0 received)", "funding", "{:,.<money>f}"),
    ("ending inventory", "ending_inventory", "{:+,.4f}"),
    ("largest |inventory|", "largest_inventory", "{:,.4f}"),
    ("equity changes (marks)", "minutes", "{:,}"),
    ("Sharpe (per mark)", "sharpe_1min", None),
    ("Sharpe (annualised)", "sharpe_annualised", None),
)


def _statistic(s, name: str) -> str:
    """A ratio with the number of observations behind it; ``n/a (5 marks)`` when too few."""
    marks = f"{s.minutes:,} mark{'s' if s.minutes != 1 else ''}"
    if name == "fill_rate":
        return "n/a (0 trades)" if not s.trades else f"{s.fill_rate:.4%} ({s.fills:,} of {s.trades:,})"
    value = getattr(s, name)
    if math.isnan(value):
        return f"n/a ({marks})"
    return f"{value:+.3f} ({marks})" if name == "sharpe_1min" else f"{value:+.2f} ({marks})"


def mark_text(interval_us: int) -> str:
    """A mark spacing in words: ``1 minute``, ``5 seconds``, ``1.5 seconds``."""
    seconds = interval_us / 1e6
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


def format_table(run: PipelineRun) -> str:
    """The summary table of a pipeline run: tape, model, sample verdict, strategy, then one
    column of figures per role mapping."""
    context, results = run.context(), list(run.results.values())
    inst = context["instrument"]
    days = context["replay_days"]
    where = ("the embedded default tape, data/default_tape" if Path(context["tape"]) == DEFAULT_TAPE
             else context["tape"])
    kind = ", synthetic" if context.get("synthetic") else ""
    contract = ""
    if inst.get("inverse"):
        contract = f", inverse: amounts in contracts of {inst['contract_size']:g}, money in {results[0].summary.currency}"
    elif inst.get("contract_size") is not None:
        contract = f", contract size {inst['contract_size']:g}"
    lines = [f"tape: {where} ({inst['exchange']} {inst['symbol']}, tick {inst['tick_size']:g}{contract}{kind})"]
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
                 f"requote {cfg.requote_interval_us / 1000:g} ms, latency order/cancel/response "
                 f"{cfg.order_latency_us / 1000:g}/{cfg.cancel_latency_us / 1000:g}/"
                 f"{cfg.response_latency_us / 1000:g} ms, fills {cfg.fill_model}"
                 + (f" ({cfg.queue_rule}" + (f", n={cfg.queue_power:g})" if cfg.queue_rule != "risk_averse" else ")")
                    if cfg.fill_model == "queue" else "")
                 + f", signals {cfg.signal_norm}")
    lines.append(f"equity marked every {mark_text(run.mark_interval_us)}; an annualised Sharpe needs "
                 f"{MIN_MARKS_ANNUALISED} marks or more")
    header = [r.config.mapping for r in results]
    width = max(18, *(len(f"{r.config.alpha_role} / {r.config.hazard_role}") for r in results))
    lines.append("")
    lines.append(f"{'mapping':32}" + "".join(f"{h:>{width + 2}}" for h in header))
    lines.append(f"{'  alpha / hazard role':32}" + "".join(
        f"{r.config.alpha_role + ' / ' + r.config.hazard_role:>{width + 2}}" for r in results))
    currency = results[0].summary.currency
    money_digits = "8" if inst.get("inverse") else "2"     # coins to the satoshi, quote currency to the cent
    for label, name, fmt in _ROWS:
        label = label.format(currency=currency)
        fmt = fmt.replace("<money>", money_digits) if fmt else fmt
        cells = []
        for r in results:
            s = r.summary
            if callable(name):
                text = name(s)
            elif fmt is None:
                text = _statistic(s, name)
            else:
                value = getattr(s, name)
                text = "n/a" if isinstance(value, float) and math.isnan(value) else (fmt or "{}").format(value)
            cells.append(f"{text:>{width + 2}}")
        lines.append(f"{label:32}" + "".join(cells))
    return "\n".join(lines)


def _days(days) -> str:
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"


def write_outputs(out_dir: Path, run: PipelineRun, result: ReplayResult, force: bool) -> tuple[list[Path], list[str]]:
    """Write fills.parquet, equity.parquet, summary.json and (with matplotlib) equity.png of one
    mapping's ``result`` of ``run`` into ``out_dir``.

    Returns (paths written, notes), a note saying why the picture was skipped if it was.
    """
    context = run.context()
    import pyarrow.parquet as pq

    written = []
    currency = result.summary.currency
    for name, arrow in (("fills.parquet", result.fills.to_arrow(currency)),
                        ("equity.parquet", result.equity.to_arrow(currency))):
        def write_table(tmp: str, table=arrow) -> None:
            pq.write_table(table, tmp)
        written.append(atomic_write(out_dir / name, write_table, force=force))
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
    # the components first and thin, the PnL last, thick and on top: it stays visible where a
    # component runs along it
    axes[0].plot(hours, eq.spread_capture, lw=1, label="spread capture", zorder=2)
    axes[0].plot(hours, eq.inventory_drift, lw=1, label="inventory drift", zorder=2)
    axes[0].plot(hours, -eq.fees, lw=1, label="-fees", zorder=2)
    if eq.funding is not None and eq.funding.any():
        axes[0].plot(hours, -eq.funding, lw=1, label="-funding", zorder=2)
    axes[0].plot(hours, eq.equity, lw=2.2, color="black", label="PnL", zorder=3)
    axes[0].set_ylabel(currency)
    inst = context["instrument"]
    source = "SYNTHETIC tape" if context.get("synthetic") else "recorded data"
    axes[0].set_title(f"{inst.get('exchange', '?')} {inst.get('symbol', '?')} ({source}) replay, "
                      f"{_days(context['replay_days'])}\n{result.config.mapping} mapping "
                      f"({context['sample'].replace('_', ' ')}); equity marked every "
                      f"{mark_text(run.mark_interval_us)}", fontsize=11)
    axes[0].legend()
    # inventory changes only at fills: a step, not a slope between marks
    axes[1].step(hours, eq.inventory, where="post", color="tab:orange", label="inventory")
    axes[1].set_ylabel("contracts" if context["instrument"].get("inverse") else "amount units")
    axes[1].legend()
    axes[2].plot(hours, eq.mid, color="tab:green", label="mid")
    axes[2].set_ylabel("price")
    axes[2].set_xlabel("hours since the first replayed event")
    axes[2].legend()
    fig.tight_layout()
    written.append(atomic_write(out_dir / "equity.png", lambda tmp: fig.savefig(tmp, format="png"), force=force))
    plt.close(fig)
    return written, []
