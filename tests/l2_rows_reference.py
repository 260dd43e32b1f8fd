"""Plain-Python twin of ``_core.l2_apply_rows`` (the specification of its rules).

A book is two dicts price -> amount; a snapshot of the top ``levels`` is taken by sorting.
"""
from __future__ import annotations

import numpy as np

ASK, SNAPSHOT, BREAK, NEW_BLOCK, SKIP = 1, 2, 4, 8, 16


class ReferenceL2:
    def __init__(self, levels: int = 25):
        self.levels = levels
        self.bids: dict = {}
        self.asks: dict = {}
        self.synced = self.ever = self.prev_snap = False
        self.pending = None          # (group, ts_exch, ts_local)
        self.counts = dict.fromkeys(("applied", "before_snapshot", "in_gap", "snapshots", "breaks",
                                     "stale"), 0)
        self.rows: list = []

    def _emit(self):
        _, ts_exch, ts_local = self.pending
        self.pending = None
        if not self.synced:
            return
        top = np.full((4, self.levels), np.nan)
        for col, side, best_first in ((0, self.bids, True), (2, self.asks, False)):
            prices = sorted(side, reverse=best_first)[:self.levels]
            top[col, :len(prices)] = prices
            top[col + 1, :len(prices)] = [side[p] for p in prices]
        self.rows.append((ts_exch, ts_local, top))

    def row(self, group, ts_exch, ts_local, kind, price, amount):
        if kind & SKIP:
            if kind & BREAK:
                self.synced = False
                self.counts["breaks"] += 1
            else:
                self.counts["stale"] += 1
            return
        snap = bool(kind & SNAPSHOT)
        new_block = snap and (not self.prev_snap or bool(kind & NEW_BLOCK))
        continuing_snapshot = snap and not new_block
        if self.pending is not None and (group != self.pending[0] or new_block) and not continuing_snapshot:
            self._emit()
        if new_block:
            self.bids.clear()
            self.asks.clear()
            self.synced = self.ever = True
            self.counts["snapshots"] += 1
        self.prev_snap = snap
        if kind & BREAK:
            self.synced = False
            self.counts["breaks"] += 1
        if self.synced:
            side = self.asks if kind & ASK else self.bids
            if amount == 0:
                side.pop(price, None)
            else:
                side[price] = amount
            self.counts["applied"] += 1
        elif self.ever:
            self.counts["in_gap"] += 1
        else:
            self.counts["before_snapshot"] += 1
        self.pending = (group, ts_exch, ts_local)

    def finish(self):
        if self.pending is not None:
            self._emit()

    def book_rows(self):
        """(ts_exch, ts_local, levels (n, 4, L)) of every snapshot written."""
        if not self.rows:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 4, self.levels))
        return (np.array([r[0] for r in self.rows], np.int64), np.array([r[1] for r in self.rows], np.int64),
                np.stack([r[2] for r in self.rows]))
