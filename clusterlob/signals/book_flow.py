"""Order-flow imbalance of the book by event type: limit-order flow vs trades.

Between two consecutive book snapshots, at level ``l`` of the bids (old price ``P``, size
``Q``; new ``p``, ``q``)::

    bid flow = q - Q   if p == P        (size added minus size removed at the same price)
             = q       if p > P         (a better price: a new queue, all of it added)
             = -Q      if p < P         (the old best queue went: all of it removed)

and the same for the asks with "better" meaning lower.  The level's OFI is
``bid flow - ask flow`` (size joining the bids or leaving the asks pushes the price up), as in
Cont, Kukanov and Stoikov (2014, level 1) and its multi-level form (levels indexed by rank).
Per bucket this module gives two series, summed over the snapshots in the bucket:

* ``book OFI touch`` - level 1 only;
* ``book OFI D levels`` - levels 1..D summed.

A trade of size ``v`` by a buy taker removes ``v`` from the asks, which the book OFI counts
as ``+v``, exactly what the trade flow (``sum side * amount``, the ``all`` OFI row) counts.
So ``book OFI - trade flow`` is what the book did besides trades - limit orders added minus
cancelled - and the study reports it as ``... ex trades`` rows.  The split is exact for
trades that stay inside the levels counted and inside one bucket; a sweep through more than D
levels, a trade whose book update lands in the next bucket, and hidden or self-trade flow leave
a residue in the ``ex trades`` rows (see ``docs/signals.md``).

:func:`book_flow_events` (compiled, ``_kernels/book_flow.pxi``) gives the per-snapshot values;
:class:`BookFlowState` carries the last snapshot across days so a tape read day by day equals
one pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _core
from .._typing import ArrayLike
from ..errors import ParameterError

__all__ = ["BookFlowState", "book_flow_events", "book_flow_names"]


def book_flow_names(levels: int) -> tuple:
    """The four row names the IC study adds for book OFI over ``levels`` levels."""
    return ("book OFI touch", f"book OFI {levels} levels",
            "book OFI touch ex trades", f"book OFI {levels} levels ex trades")


@dataclass
class BookFlowState:
    """The last snapshot's top ``levels`` (rows bid px, bid sz, ask px, ask sz)."""

    levels: int
    prev: np.ndarray | None = None      # set by __post_init__ when not given
    has_prev: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    def __post_init__(self):
        if isinstance(self.levels, bool) or not isinstance(self.levels, (int, np.integer)) or self.levels < 1:
            raise ParameterError(f"`book_levels` must be an integer >= 1, got {self.levels!r}")
        if self.prev is None:
            self.prev = np.full((4, int(self.levels)), np.nan)


def book_flow_events(bid_px: ArrayLike, bid_sz: ArrayLike, ask_px: ArrayLike, ask_sz: ArrayLike,
                     state: BookFlowState) -> tuple[np.ndarray, np.ndarray]:
    """Book OFI of every snapshot against the previous one (touch, and summed over D levels).

    Parameters
    ----------
    bid_px, bid_sz, ask_px, ask_sz : ndarray, shape (n, L)
        Snapshots in time order (a tape's book), L >= ``state.levels``.
    state : BookFlowState
        The snapshot before the first row (updated in place to the last row).

    Returns
    -------
    e_touch, e_depth : ndarray, shape (n,), float64
        Level-1 OFI and the sum over levels 1..D; 0 for the first snapshot ever seen.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in (bid_px, bid_sz, ask_px, ask_sz)]
    n = arrays[0].shape[0]
    for a in arrays:
        if a.ndim != 2 or a.shape[0] != n:
            raise ParameterError(f"book arrays must be (n, L) with one n, got shapes {[x.shape for x in arrays]}")
    if arrays[0].shape[1] < state.levels:
        raise ParameterError(f"`book_levels` must be <= the tape's book depth ({arrays[0].shape[1]}), "
                             f"got {state.levels}")
    e_touch = np.empty(n)
    e_depth = np.empty(n)
    assert state.prev is not None       # BookFlowState.__post_init__
    bid_px, bid_sz, ask_px, ask_sz = arrays
    _core.book_flow_events(bid_px, bid_sz, ask_px, ask_sz, int(state.levels), state.prev, state.has_prev,
                           e_touch, e_depth)
    return e_touch, e_depth
