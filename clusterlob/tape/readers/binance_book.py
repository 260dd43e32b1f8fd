"""The L2 order book of a Binance depth stream, and the rules that keep it in sync.

:class:`L2Book` (the compiled ``clusterlob._core.BinanceL2Book``) holds the price levels of
one instrument.  :class:`DepthSync` applies REST depth snapshots and depth diffs to it by
Binance's documented procedure for USD-M futures:

1. diffs that arrive before a usable REST snapshot are buffered;
2. when a snapshot is there, buffered diffs with ``u`` < ``lastUpdateId`` are dropped;
3. the first diff applied must straddle the snapshot: ``U`` <= ``lastUpdateId`` <= ``u``
   (when the first diff with ``u`` >= ``lastUpdateId`` starts after it, the snapshot is too
   old: it is counted as not connecting and discarded, and the diffs stay buffered for the
   next one; nothing is dropped until a snapshot connects);
4. afterwards each diff's ``pu`` must equal the previous applied diff's ``u``.

A diff that breaks rule 4 (or whose levels are malformed and skipped) opens a *sequence
gap*: the book is out of sync, nothing is emitted from it, and diffs are buffered until a
REST snapshot connects again.  Spot-style diffs without ``pu`` use the spot rules (drop
``u`` <= ``lastUpdateId``, first ``U`` <= ``lastUpdateId`` + 1 <= ``u``, then
``U`` = previous ``u`` + 1).
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

from ... import _core

if TYPE_CHECKING:
    import numpy as np
__all__ = ["L2Book", "DepthSync", "SequenceGap", "parse_levels"]

L2Book = _core.BinanceL2Book
parse_levels = _core.binance_parse_levels


@dataclass
class SequenceGap:
    """One period in which the book was out of sync.

    ``start_line`` / ``start_ts_local_us``: the depth update that broke the chain;
    ``end_line`` / ``end_ts_local_us``: the message after which the book was in sync again
    (None: still out of sync at the end of the file); ``last_u``: the last applied update
    id; ``next_pu``: the ``pu`` of the update that broke the chain (None for a malformed
    one); ``diffs_not_applied``: depth updates received in the gap that were never applied.
    """

    start_line: int
    start_ts_local_us: int
    last_u: int
    next_pu: int | None
    reason: str
    end_line: int | None = None
    end_ts_local_us: int | None = None
    diffs_not_applied: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class DepthSync:
    """Keeps an :class:`L2Book` in sync with a depth stream (rules in the module docstring).

    Parameters
    ----------
    on_bad : callable(line_no, message)
        Called for a malformed depth update or snapshot; raises to stop, or returns to skip
        it (a skipped update breaks the chain like a gap).
    on_apply : callable(u, book), optional
        Called after every applied diff (for checks such as the bookTicker agreement).
    max_buffered : int
        Diffs kept while out of sync; older ones are discarded (and never applied).
    """

    def __init__(self, on_bad: Callable[[int, str], None],
                 on_apply: Callable[[int, L2Book], None] | None = None, max_buffered: int = 5000):
        self.book = L2Book()
        self.on_bad = on_bad
        self.on_apply = on_apply
        self.synced = False
        self.ever_synced = False
        self.last_u: int | None = None
        self.last_ts_exch_us: int | None = None
        self.pending: tuple[int, Any, int, int] | None = None   # (lastUpdateId, levels, n_bids, line_no)
        self.buffer: deque = deque(maxlen=max_buffered)
        self.gaps: list = []
        self.gap: SequenceGap | None = None  # the open gap (None before the first sync)
        self.applied = 0
        self.diffs_seen = 0
        self.not_applied_before_sync = 0
        self.snapshots_seen = 0
        self.snapshots_used = 0
        self.snapshots_unconnected = 0
        self.snapshots_ignored = 0           # arrived while in sync
        self._phase_received = 0             # diffs received in the current out-of-sync phase
        self._phase_applied = 0

    def _apply(self, diff) -> bool:
        first_id, final_id, prev_id, levels, n_bids, ts_exch_us, ts_local_us, line_no = diff
        try:
            self.book.apply_levels(levels, n_bids)
        except ValueError as exc:
            self.on_bad(line_no, f"depth update: {exc}")
            return False
        self.last_u = final_id
        self.last_ts_exch_us = ts_exch_us
        self.applied += 1
        if self.on_apply is not None:
            self.on_apply(final_id, self.book)
        return True

    def _continues(self, diff) -> bool:
        prev_id = diff[2]
        assert self.last_u is not None       # asked only after an update was applied
        return prev_id == self.last_u if prev_id is not None else diff[0] == self.last_u + 1

    @staticmethod
    def _stale(diff, last_update_id: int) -> bool:
        """Whether a diff is older than a snapshot (USD-M: u < lastUpdateId; spot: u <=)."""
        return diff[1] < last_update_id if diff[2] is not None else diff[1] <= last_update_id

    def _break(self, diff, reason: str) -> None:
        self.synced = False
        assert self.last_u is not None       # a chain breaks only after it was in sync
        self.gap = SequenceGap(diff[7], diff[6], self.last_u, diff[2], reason)
        self._phase_received = 0
        self._phase_applied = 0
        self.buffer.clear()

    def diff(self, first_id: int, final_id: int, prev_id: int | None, levels: np.ndarray, n_bids: int,
             ts_exch_us: int, ts_local_us: int, line_no: int) -> bool:
        """Take one depth update (``levels``: (2, m) prices and quantities, the first
        ``n_bids`` bids, then asks); True when the book is in sync afterwards and changed by
        it (the caller then emits a snapshot).  ``levels`` is kept while buffered."""
        self.diffs_seen += 1
        diff = (first_id, final_id, prev_id, levels, n_bids, ts_exch_us, ts_local_us, line_no)
        if self.synced:
            if self._continues(diff):
                if self._apply(diff):
                    return True
                self._break(diff, "malformed depth update skipped")
                self._phase_received += 1
                return False
            self._break(diff, "pu differs from the previous update's u")
        self._phase_received += 1
        self.buffer.append(diff)
        if self.pending is not None and not self._stale(diff, self.pending[0]):
            return self._connect(ts_local_us, line_no)   # the first diff that can connect it
        return False

    def snapshot(self, last_update_id: int, levels: np.ndarray, n_bids: int, ts_local_us: int,
                 line_no: int) -> bool:
        """Take one REST depth snapshot (levels as in :meth:`diff`); True when buffered diffs
        brought the book in sync."""
        self.snapshots_seen += 1
        if self.synced:
            self.snapshots_ignored += 1
            return False
        if self.pending is not None:
            self.snapshots_unconnected += 1  # superseded before any diff connected it
        self.pending = (last_update_id, levels, n_bids, line_no)
        return self._connect(ts_local_us, line_no)

    def _connect(self, ts_local_us: int, line_no: int) -> bool:
        assert self.pending is not None      # called with a snapshot pending
        last_update_id, levels, n_bids, snap_line = self.pending
        buf = self.buffer
        # the buffer stays intact until the snapshot connects: a snapshot that never does
        # (too old, or another symbol's in a mixed file) costs no diffs
        first = next((k for k, d in enumerate(buf) if not self._stale(d, last_update_id)), None)
        if first is None:
            return False                     # wait for the next diff
        first_id, prev_id = buf[first][0], buf[first][2]
        bound = last_update_id if prev_id is not None else last_update_id + 1
        if not first_id <= bound:
            self.snapshots_unconnected += 1  # older than the diffs that follow it
            self.pending = None
            return False
        self.pending = None
        for _ in range(first):
            buf.popleft()                    # u < lastUpdateId: already in the snapshot
        try:
            self.book.reset_levels(levels, n_bids)
        except ValueError as exc:
            self.on_bad(snap_line, f"REST depth snapshot: {exc}")
            return False
        self.snapshots_used += 1
        self.last_u = None
        applied = 0
        while buf:
            if applied and not self._continues(buf[0]):
                break
            if not self._apply(buf.popleft()):
                break
            applied += 1
        self._phase_applied += applied
        if buf or not applied:
            return False                     # the chain broke inside the buffer: still out of sync
        self.synced = True
        self.ever_synced = True
        not_applied = self._phase_received - self._phase_applied
        if self.gap is None:
            self.not_applied_before_sync += not_applied
        else:
            self.gap.end_line = line_no
            self.gap.end_ts_local_us = ts_local_us
            self.gap.diffs_not_applied = not_applied
            self.gaps.append(self.gap)
            self.gap = None
        self._phase_received = self._phase_applied = 0
        return True

    def finish(self) -> None:
        """Close an open gap at the end of the input."""
        not_applied = self._phase_received - self._phase_applied
        if self.synced:
            return
        if self.gap is not None:
            self.gap.diffs_not_applied = not_applied
            self.gaps.append(self.gap)
            self.gap = None
        else:
            self.not_applied_before_sync += not_applied
        self._phase_received = self._phase_applied = 0
