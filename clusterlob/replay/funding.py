"""Funding payments from a tape's funding table (Tardis ``derivative_ticker``, Binance
``markPriceUpdate``): the times at which funding is paid and the rate paid then.

Each ticker row carries the current funding rate and the time it applies (``next_funding_us``).
The rate paid at a funding time ``T`` is the rate of the last row published before ``T`` (by the
exchange's clock) that names ``T``: what a trader could know before the payment, nothing later.
"""
from __future__ import annotations

import numpy as np

from ..tape.types import Funding

__all__ = ["funding_payments"]


def funding_payments(funding: Funding) -> tuple[np.ndarray, np.ndarray]:
    """(payment times us, rates) of a :class:`~clusterlob.tape.types.Funding` table, sorted by
    time; rows without a funding time, or published at or after it, are not used."""
    t = np.asarray(funding.ts_exch_us, dtype=np.int64)
    due = np.asarray(funding.next_funding_us, dtype=np.int64)
    rate = np.asarray(funding.funding_rate, dtype=np.float64)
    usable = (due > 0) & (t < due) & np.isfinite(rate)
    t, due, rate = t[usable], due[usable], rate[usable]
    if not due.shape[0]:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    order = np.lexsort((t, due))            # by payment time, then publication time
    due, rate = due[order], rate[order]
    last = np.r_[due[1:] != due[:-1], True]  # the last publication before each payment
    return due[last], rate[last]
