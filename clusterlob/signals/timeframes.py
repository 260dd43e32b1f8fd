"""Timeframe analysis (Experiment 5): a taker that follows OFI, at several bucket widths.

The honest rule, per group, weighting and bucket width:

* at bucket ``b``'s close, with ``thr[b]`` the rolling quantile of ``|OFI|`` over the usable
  buckets *before* ``b`` (covered by the data's days and with a close mid: after the first snapshot) (:func:`rolling_threshold`; NaN, hence flat, until ``min_history`` of
  them exist), take position ``sign(OFI[b])`` if ``|OFI[b]| > thr[b]``, else stay flat;
* hold it over bucket ``b + 1``: the position earns ``r_1[b] = ln(mid_close[b+1] / mid_close[b])``;
* every non-flat bucket is one trade (a round trip: enter at ``b``'s close, leave at ``b+1``'s),
  paying the taker fee on both sides, ``2 * fee_bps``.

Nothing of bucket ``b + 1`` reaches the decision, and the threshold never sees the bucket it
judges or any later one (the research notes' defect 5: the original shifted the return one bucket
too far and fell back to a full-sample percentile).

The *simultaneous* variant scores the same position against ``conr[b]``, the return over bucket
``b`` itself, whose flow caused it.  That is the trap behind the log's "+369%" (defect 6).  It is
computed only as a diagnostic, and every output labels it ``BIASED``.

Returns are mid to mid: the spread a taker crosses is not charged, only the fee.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from .._io import check_int, check_number
from .._typing import ArrayLike
from ..errors import ParameterError
from ..report import rows_to_arrow
from .ofi import BucketSignals

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "HONEST",
    "BIASED",
    "ThresholdRule",
    "TakerResult",
    "TimeframeTable",
    "rolling_threshold",
    "taker_positions",
    "taker_returns",
    "taker_backtest",
    "timeframe_analysis",
]

HONEST = "next bucket (T+1)"
BIASED = "BIASED: same bucket (simultaneous, look-ahead)"
US_PER_YEAR = 365 * 86_400 * 1_000_000
_ROWS_PER_CHUNK = 1 << 20


@dataclass(frozen=True)
class ThresholdRule:
    """Trade when ``|OFI[b]|`` exceeds the ``quantile`` of ``|OFI|`` over the last ``window``
    covered buckets before ``b``; flat until ``min_history`` such buckets exist."""

    quantile: float = 0.5
    window: int = 288
    min_history: int = 12

    def __post_init__(self):
        check_number("quantile", self.quantile, 0, 1)
        check_int("window", self.window, 1)
        if self.window > 10_000_000:
            raise ParameterError(f"`window` must be an integer in 1..10000000 (buckets), got {self.window!r}")
        if not (hasattr(self.min_history, "__index__") and not isinstance(self.min_history, bool)
                and 1 <= self.min_history <= self.window):
            raise ParameterError(f"`min_history` must be an integer in 1..window ({self.window}), "
                                 f"got {self.min_history!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def rolling_threshold(abs_signal: ArrayLike, usable: ArrayLike, rule: ThresholdRule) -> np.ndarray:
    """Threshold per bucket from earlier usable buckets only.

    Parameters
    ----------
    abs_signal : ndarray, shape (n,)
        ``|OFI|`` per bucket.
    usable : ndarray, shape (n,), bool
        Buckets that may serve as history (covered by the data).
    rule : ThresholdRule

    Returns
    -------
    ndarray, shape (n,)
        ``thr[b]`` = quantile (linear interpolation, as numpy.quantile) of ``abs_signal`` over the
        last ``rule.window`` usable buckets strictly before ``b``; NaN while fewer than
        ``rule.min_history`` exist.  Changing bucket ``b`` or any later bucket never changes
        ``thr[:b+1]``.
    """
    a = np.asarray(abs_signal, dtype=np.float64)
    usable = np.asarray(usable, dtype=bool)
    if a.ndim != 1 or usable.shape != a.shape:
        raise ParameterError(f"`abs_signal` and `usable` must be 1-d of one length, got {a.shape}, {usable.shape}")
    n = a.shape[0]
    hist_idx = np.flatnonzero(usable)
    hist = a[hist_idx]
    m = hist.shape[0]
    w = int(rule.window)
    # padded[k : k + w] = the w usable values before usable value k (NaN where there are fewer)
    padded = np.concatenate([np.full(w, np.nan), hist])
    windows = np.lib.stride_tricks.sliding_window_view(padded, w)   # (m + 1, w)
    thr_at = np.full(m + 1, np.nan)
    # warm-up rows (fewer than w values before them), one by one; then full windows in blocks
    for k in range(rule.min_history, min(w, m + 1)):
        thr_at[k] = np.quantile(hist[:k], rule.quantile)
    step = max(1, _ROWS_PER_CHUNK // w)
    for lo in range(w, m + 1, step):
        hi = min(lo + step, m + 1)
        thr_at[lo:hi] = np.quantile(windows[lo:hi], rule.quantile, axis=1)
    # bucket b sees the usable values before it: their count is searchsorted(hist_idx, b)
    n_before = np.searchsorted(hist_idx, np.arange(n), side="left")
    return thr_at[n_before]


def taker_positions(signal: ArrayLike, threshold: ArrayLike) -> np.ndarray:
    """(n,) int8 position: ``sign(signal)`` where ``|signal| > threshold``, else 0 (NaN threshold: 0)."""
    s = np.asarray(signal, dtype=np.float64)
    thr = np.asarray(threshold, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        active = np.isfinite(thr) & (np.abs(s) > thr)
    return np.where(active, np.sign(s), 0.0).astype(np.int8)


@dataclass(frozen=True)
class TakerResult:
    """One taker run.  Returns are sums of per-trade log returns (fixed notional, no compounding).

    ``variant`` is :data:`HONEST` or :data:`BIASED`; ``biased`` says the same as a flag.
    Sharpe ratios are annualized from per-bucket returns (flat buckets count 0) with
    ``365 * 86400 / bucket_s`` buckets a year; NaN with fewer than
    :data:`MIN_BUCKETS_ANNUALISED` scored buckets (``buckets_scored``).
    """

    timeframe_min: float
    group: str
    weighting: str
    variant: str
    biased: bool
    buckets_scored: int
    n_trades: int
    gross_return_pct: float
    net_return_pct: float
    mean_gross_bps_per_trade: float
    mean_net_bps_per_trade: float
    hit_rate: float
    sharpe_gross: float
    sharpe_net: float
    fee_bps: float

    def to_dict(self) -> dict:
        return asdict(self)


#: An annualised Sharpe ratio needs at least this many scored buckets (else NaN, printed n/a).
MIN_BUCKETS_ANNUALISED = 30


def _sharpe(per_bucket: np.ndarray, periods_per_year: float) -> float:
    if per_bucket.shape[0] < MIN_BUCKETS_ANNUALISED:
        return math.nan
    sd = float(per_bucket.std(ddof=1))
    if not sd > 0:
        return math.nan
    return float(per_bucket.mean()) / sd * math.sqrt(periods_per_year)


def taker_returns(signal: ArrayLike, returns: ArrayLike, threshold: ArrayLike, usable: ArrayLike, *, fee_bps: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bucket taker returns, for equity curves: ``(gross, net, position)``, each shape (n,).

    ``gross[b] = position[b] * returns[b]`` and ``net[b] = gross[b] - 2 * fee_bps * 1e-4`` when
    ``position[b] != 0``; both NaN where the bucket is not scored (not usable, or its return is NaN).
    ``position`` is :func:`taker_positions` (int8).  Parameters as :func:`taker_backtest`.
    """
    check_number("fee_bps", fee_bps, 0)
    ret = np.asarray(returns, dtype=np.float64)
    usable = np.asarray(usable, dtype=bool)
    position = taker_positions(signal, threshold)
    if ret.shape != position.shape or usable.shape != position.shape:
        raise ParameterError(f"`signal`, `returns`, `threshold` and `usable` must have one shape, got "
                             f"{position.shape}, {ret.shape}, {usable.shape}")
    scored = usable & np.isfinite(ret)
    gross = np.where(scored, position * ret, np.nan)
    net = gross - 2.0 * fee_bps * 1e-4 * (position != 0)
    return gross, net, position


def taker_backtest(signal: ArrayLike, returns: ArrayLike, threshold: ArrayLike, usable: ArrayLike, *, fee_bps: float = 3.0, bucket_us: int,
                   timeframe_min: float = math.nan, group: str = "", weighting: str = "",
                   biased: bool = False) -> TakerResult:
    """Score ``taker_positions(signal, threshold)`` against per-bucket ``returns``.

    Parameters
    ----------
    signal, threshold : ndarray, shape (n,)
    returns : ndarray, shape (n,)
        What the position of bucket ``b`` earns: ``r_1[b]`` for the honest rule, ``conr[b]`` for
        the biased simultaneous diagnostic (then pass ``biased=True``).
    usable : ndarray, shape (n,), bool
        Buckets that can be traded (covered); a bucket whose return is NaN is not scored.
    fee_bps : float
        Taker fee per side in basis points (a trade pays it twice).
    bucket_us : int
        Bucket width, for the annualization.
    """
    gross, net, position = taker_returns(signal, returns, threshold, usable, fee_bps=fee_bps)
    scored = np.isfinite(gross)
    gross, net, trade = gross[scored], net[scored], position[scored] != 0
    n_trades = int(trade.sum())
    ppy = US_PER_YEAR / bucket_us
    return TakerResult(
        timeframe_min=float(timeframe_min), group=group, weighting=weighting,
        variant=BIASED if biased else HONEST, biased=bool(biased),
        buckets_scored=int(scored.sum()), n_trades=n_trades,
        gross_return_pct=100.0 * float(gross.sum()),
        net_return_pct=100.0 * float(net.sum()),
        mean_gross_bps_per_trade=1e4 * float(gross[trade].mean()) if n_trades else math.nan,
        mean_net_bps_per_trade=1e4 * float(net[trade].mean()) if n_trades else math.nan,
        hit_rate=float(np.mean(gross[trade] > 0)) if n_trades else math.nan,
        sharpe_gross=_sharpe(gross, ppy), sharpe_net=_sharpe(net, ppy), fee_bps=float(fee_bps))


@dataclass(frozen=True)
class TimeframeTable:
    """Taker results per (timeframe, group, weighting), honest and BIASED rows side by side."""

    rows: tuple[TakerResult, ...]
    rule: ThresholdRule
    fee_bps: float

    def honest(self) -> tuple:
        return tuple(r for r in self.rows if not r.biased)

    def biased(self) -> tuple:
        return tuple(r for r in self.rows if r.biased)

    def get(self, timeframe_min: float, group: str, weighting: str = "size", biased: bool = False) -> TakerResult:
        for r in self.rows:
            if (r.timeframe_min, r.group, r.weighting, r.biased) == (float(timeframe_min), group, weighting, biased):
                return r
        raise ParameterError(f"no timeframe row for {timeframe_min!r} min, {group!r}, {weighting!r}, biased={biased}")

    def to_dict(self) -> dict:
        return {"rule": self.rule.to_dict(), "fee_bps": self.fee_bps,
                "note": "rows with biased=true score a signal against the return of its own bucket "
                        "(simultaneity look-ahead); they are a diagnostic, not a result",
                "rows": [r.to_dict() for r in self.rows]}

    def to_arrow(self) -> pa.Table:
        """One row per :class:`TakerResult` (its fields are the columns; ``biased`` marks the
        simultaneous diagnostic rows)."""
        return rows_to_arrow(self.rows, [f.name for f in fields(TakerResult)], {"fee_bps": repr(self.fee_bps)})


def timeframe_analysis(signals_by_timeframe: Mapping, *, rule: ThresholdRule = ThresholdRule(),
                       fee_bps: float = 3.0, weightings: Sequence[str] = ("size", "count"), groups: Sequence[str] | None = None) -> TimeframeTable:
    """Honest and biased taker runs for every timeframe, group and weighting.

    Parameters
    ----------
    signals_by_timeframe : mapping of minutes -> BucketSignals
        The same trades bucketed at each width (for example 5, 15 and 30 minutes).
    rule : ThresholdRule
    fee_bps : float
        Taker fee per side (default 3 bps).
    weightings : sequence of {"size", "count"}
    groups : sequence of str, optional
        Default: every group of the signals (``"all"`` first).
    """
    if not isinstance(rule, ThresholdRule):
        raise ParameterError(f"`rule` must be a ThresholdRule, got {type(rule).__name__}")
    if not signals_by_timeframe:
        raise ParameterError("`signals_by_timeframe` must hold at least one timeframe, got none")
    rows = []
    for minutes, sig in signals_by_timeframe.items():
        if not isinstance(sig, BucketSignals):
            raise ParameterError(f"timeframe {minutes!r}: expected BucketSignals, got {type(sig).__name__}")
        frnb, conr = sig.frnb(), sig.conr()
        # history and trading only once the data has started (a close mid exists): the empty
        # buckets before a tape's first snapshot would otherwise feed zeros to the threshold
        usable = sig.covered & np.isfinite(sig.mid_close)
        for g in (groups or sig.group_names):
            for w in weightings:
                ofi = sig.ofi(g, w)
                thr = rolling_threshold(np.abs(ofi), usable, rule)
                for biased, ret in ((False, frnb), (True, conr)):
                    rows.append(taker_backtest(ofi, ret, thr, usable, fee_bps=fee_bps,
                                               bucket_us=sig.grid.bucket_us, timeframe_min=float(minutes),
                                               group=g, weighting=w, biased=biased))
    return TimeframeTable(tuple(rows), rule, float(fee_bps))
