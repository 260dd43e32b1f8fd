"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

Bailey, Borwein, Lopez de Prado and Zhu, "The probability of backtest overfitting" (J. Comp.
Finance, 2017).  Given a matrix ``M`` of per-period returns, one column per candidate
strategy (``T`` rows, ``N`` columns):

1. drop the first ``T mod S`` rows and cut the rest into ``S`` (even) blocks of equal length;
2. for every one of the ``C(S, S/2)`` ways to choose half of the blocks as the in-sample
   set (the other half out of sample), take the candidate ``n*`` with the best in-sample
   performance (Sharpe: mean / sample std of its rows; ties go to the first column);
3. its out-of-sample relative rank ``w = rank / (N + 1)`` (rank 1 = worst, average rank for
   ties) gives the logit ``lambda = ln(w / (1 - w))``;
4. PBO is the share of splits with ``lambda <= 0``: the in-sample best did no better than
   the median candidate out of sample.

A column without variation in a split (a config that did not trade) has Sharpe 0: it ranks
above the losing configs and below the winning ones.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .._typing import ArrayLike
from ..errors import ParameterError

__all__ = ["PBOResult", "cscv_pbo"]


@dataclass(frozen=True)
class PBOResult:
    """CSCV outcome.

    Attributes
    ----------
    pbo : float
        Share of splits whose in-sample best ranks at or below the out-of-sample median (NaN
        when it cannot be computed: fewer than 2 candidates or 2 blocks).
    n_splits : int
        ``C(S, S/2)`` splits evaluated.
    n_blocks : int
        ``S``.
    rows, candidates : int
        ``T`` rows used (after dropping ``T mod S``) and ``N`` candidates.
    logits : ndarray, shape (n_splits,)
    is_perf, oos_perf : ndarray, shape (n_splits,)
        In-sample Sharpe of each split's best and its out-of-sample Sharpe.
    note : str
    """

    pbo: float
    n_splits: int
    n_blocks: int
    rows: int
    candidates: int
    logits: np.ndarray
    is_perf: np.ndarray
    oos_perf: np.ndarray
    note: str = ""

    def to_dict(self) -> dict:
        finite = np.isfinite(self.is_perf) & np.isfinite(self.oos_perf)
        slope = math.nan
        if finite.sum() >= 3 and np.std(self.is_perf[finite]) > 0:
            slope = float(np.polyfit(self.is_perf[finite], self.oos_perf[finite], 1)[0])
        return {"pbo": self.pbo, "n_splits": self.n_splits, "n_blocks": self.n_blocks, "rows": self.rows,
                "candidates": self.candidates,
                "logit_median": float(np.median(self.logits)) if self.logits.size else math.nan,
                "is_sharpe_mean": float(np.nanmean(self.is_perf)) if finite.any() else math.nan,
                "oos_sharpe_mean": float(np.nanmean(self.oos_perf)) if finite.any() else math.nan,
                "share_oos_below_zero": float(np.mean(self.oos_perf[finite] < 0)) if finite.any() else math.nan,
                "degradation_slope": slope, "note": self.note}


def _sharpe(total, sumsq, n):
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        var = (sumsq - n * mean * mean) / (n - 1)
        out = mean / np.sqrt(var)
    flat = ~(var > 1e-18 * np.maximum(1.0, np.abs(sumsq) / n))
    # a flat column (a config that did not trade) has Sharpe 0, not an undefined one: it ranks
    # above the losers and below the winners
    m = mean[flat]
    out[flat] = np.where(m > 1e-12, np.inf, np.where(m < -1e-12, -np.inf, 0.0))
    return out


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ascending ranks 1..N per row, NaN lowest, average ranks for ties."""
    from scipy.stats import rankdata
    return rankdata(np.where(np.isnan(values), -np.inf, values), method="average", axis=1)


def cscv_pbo(returns: ArrayLike, n_blocks: int = 16) -> PBOResult:
    """PBO of the candidates in the columns of ``returns`` (see the module doc).

    Parameters
    ----------
    returns : array_like, shape (T, N)
        Per-period PnL (or returns) of each candidate, rows in time order, finite.
    n_blocks : int
        ``S``, even, >= 2; lowered to the largest even number <= T when T is smaller.

    Returns
    -------
    PBOResult
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise ParameterError(f"`returns` must be 2-dimensional (periods x candidates), got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ParameterError(f"`returns` has {int((~np.isfinite(m)).sum())} non-finite values")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 2 or n_blocks % 2:
        raise ParameterError(f"`n_blocks` must be an even integer >= 2, got {n_blocks!r}")
    t, n = m.shape
    s = min(n_blocks, t - t % 2)
    empty = np.empty(0)
    if n < 2 or s < 2:
        return PBOResult(math.nan, 0, s, t, n, empty, empty, empty,
                         f"not computed: {n} candidate(s) and {t} period(s) (need >= 2 and >= 2)")
    note = f"S lowered from {n_blocks} to {s} (only {t} periods)" if s < n_blocks else ""
    drop = t % s
    m = m[drop:]
    size = m.shape[0] // s
    blocks = m.reshape(s, size, n)
    b_sum = blocks.sum(axis=1)                       # (S, N)
    b_sq = (blocks ** 2).sum(axis=1)
    combos = np.array(list(itertools.combinations(range(s), s // 2)))
    mask = np.zeros((combos.shape[0], s))
    np.put_along_axis(mask, combos, 1.0, axis=1)
    rows_half = size * (s // 2)
    is_perf = _sharpe(mask @ b_sum, mask @ b_sq, rows_half)
    oos_perf = _sharpe((1 - mask) @ b_sum, (1 - mask) @ b_sq, rows_half)
    best = np.argmax(np.where(np.isnan(is_perf), -np.inf, is_perf), axis=1)
    ranks = _ranks(oos_perf)
    w = ranks[np.arange(len(best)), best] / (n + 1)
    logits = np.log(w / (1 - w))
    idx = np.arange(len(best))
    return PBOResult(float(np.mean(logits <= 0)), int(combos.shape[0]), s, int(m.shape[0]), n, logits,
                     is_perf[idx, best], oos_perf[idx, best],
                     (note + "; " if note else "") + (f"dropped the first {drop} period(s)" if drop else ""))
