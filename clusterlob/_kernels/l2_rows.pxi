# An L2 book rebuilt from one row per level update (Tardis incremental_book_L2, Binance
# historical depth files), with one book snapshot written per group of rows.
#
# The rows of a file arrive in batches; this kernel applies one batch to a BinanceL2Book
# (binance.pxi, included before this file) and writes the top levels after every finished
# group.  The last group of a batch is only known to be finished when the next row starts
# another one, so it stays *pending* in ``state`` until the next call (or the final one).
# Python decides what each row is (the ``kind`` bits, from the file's text columns and the
# update-id chain); the kernel only applies and counts.  Plain-Python twin:
# tests/l2_rows_reference.py.

from libc.stdint cimport int8_t

cdef enum:
    L2_ASK = 1          # the row is an ask level (else a bid)
    L2_SNAPSHOT = 2     # the row belongs to a snapshot block (replaces the book)
    L2_BREAK = 4        # the book is out of sync from this row on (a gap, a skipped bad row)
    L2_NEW_BLOCK = 8    # a snapshot row that starts a new block even after snapshot rows
    L2_SKIP = 16        # a row ignored: stale (counted), or with L2_BREAK a bad row that breaks sync

# state (IN/OUT, int64[L2_STATE_SIZE]); zeros = a fresh stream
cdef enum:
    L2_STATE_SYNCED = 0       # 1 while the book is valid (a snapshot applied, no break since)
    L2_STATE_EVER = 1         # 1 once any snapshot was applied
    L2_STATE_PENDING = 2      # 1 when a group is open
    L2_STATE_GROUP = 3        # its group key
    L2_STATE_EXCH = 4         # its last row's exchange time
    L2_STATE_LOCAL = 5        # its last row's local time
    L2_STATE_PREV_SNAP = 6    # 1 when the previous row was a snapshot row
    L2_STATE_ROW = 7          # the file row (file_row[i]) of the pending group's last row
    L2_STATE_SIZE = 8

# counts (IN/OUT, int64[L2_COUNTS_SIZE]), added to
cdef enum:
    L2_APPLIED = 0            # rows applied to the book
    L2_BEFORE_SNAPSHOT = 1    # update rows before the first snapshot (not applied)
    L2_IN_GAP = 2             # update rows after a break, before the next snapshot (not applied)
    L2_SNAPSHOTS = 3          # snapshot blocks that reset the book
    L2_BREAKS = 4             # rows flagged L2_BREAK
    L2_STALE = 5              # rows flagged L2_SKIP alone
    L2_COUNTS_SIZE = 6

L2_KIND = {"ask": L2_ASK, "snapshot": L2_SNAPSHOT, "break": L2_BREAK, "new_block": L2_NEW_BLOCK,
           "skip": L2_SKIP}
L2_STATE = {"synced": L2_STATE_SYNCED, "ever": L2_STATE_EVER, "pending": L2_STATE_PENDING,
            "group": L2_STATE_GROUP, "exch": L2_STATE_EXCH, "local": L2_STATE_LOCAL,
            "prev_snap": L2_STATE_PREV_SNAP, "row": L2_STATE_ROW, "size": L2_STATE_SIZE}
L2_COUNTS = {"applied": L2_APPLIED, "before_snapshot": L2_BEFORE_SNAPSHOT, "in_gap": L2_IN_GAP,
             "snapshots": L2_SNAPSHOTS, "breaks": L2_BREAKS, "stale": L2_STALE, "size": L2_COUNTS_SIZE}


cdef inline Py_ssize_t _l2_emit(BinanceL2Book book, int64_t[::1] state, Py_ssize_t n_out,
                                int64_t[::1] out_exch, int64_t[::1] out_local, int64_t[::1] out_row,
                                double[:, :, ::1] out_levels) noexcept:
    """Close the pending group: write the book when it is in sync."""
    state[L2_STATE_PENDING] = 0
    if not state[L2_STATE_SYNCED]:
        return n_out
    out_exch[n_out] = state[L2_STATE_EXCH]
    out_local[n_out] = state[L2_STATE_LOCAL]
    out_row[n_out] = state[L2_STATE_ROW]
    _binance_side_top(&book.bids, 1.0, out_levels, n_out, 0, out_levels.shape[2])
    _binance_side_top(&book.asks, -1.0, out_levels, n_out, 2, out_levels.shape[2])
    return n_out + 1


def l2_apply_rows(BinanceL2Book book not None, const int64_t[::1] group, const int64_t[::1] ts_exch,
                  const int64_t[::1] ts_local, const int8_t[::1] kind, const double[::1] price,
                  const double[::1] amount, const int64_t[::1] file_row, int64_t[::1] state,
                  int64_t[::1] counts, int64_t[::1] out_exch, int64_t[::1] out_local,
                  int64_t[::1] out_row, double[:, :, ::1] out_levels, bint final=False):
    """Apply one batch of level rows to ``book``; return the number of snapshots written.

    IN: ``group`` (n,) group key (rows of one message share it); ``ts_exch``, ``ts_local``
    (n,) times (us); ``kind`` (n,) L2_* bits; ``price`` (n,) > 0, ``amount`` (n,) >= 0
    (0 removes the level), validated by the caller; ``file_row`` (n,) each row's row in its
    file (for reports).
    IN/OUT: ``state`` (L2_STATE_SIZE,), ``counts`` (L2_COUNTS_SIZE,).
    OUT: ``out_exch``, ``out_local``, ``out_row`` (n + 1,), ``out_levels`` (n + 1, 4, L): one row per
    finished group while in sync (bid_px, bid_sz, ask_px, ask_sz, best first, NaN-padded).
    ``out_row`` is the file row of the group's last row.
    ``final``: the stream ends after this batch (the pending group is closed).

    Rules: a snapshot row after a non-snapshot row (or flagged L2_NEW_BLOCK) clears the book
    and brings it in sync; L2_BREAK takes it out of sync before its row; rows are applied only
    in sync (others counted); a group ends when the group key changes, except between rows of
    one snapshot block (a snapshot is written whole or not at all).
    """
    cdef Py_ssize_t i, n = group.shape[0], n_out = 0
    cdef int k
    cdef bint snap, new_block
    if ts_exch.shape[0] != n or ts_local.shape[0] != n or kind.shape[0] != n or price.shape[0] != n \
            or amount.shape[0] != n or file_row.shape[0] != n:
        raise ValueError("l2_apply_rows: the row arrays must have one length")
    if out_exch.shape[0] < n + 1 or out_local.shape[0] < n + 1 or out_row.shape[0] < n + 1 \
            or out_levels.shape[0] < n + 1 \
            or out_levels.shape[1] != 4:
        raise ValueError("l2_apply_rows: the outputs need n + 1 rows and shape (rows, 4, L)")
    if state.shape[0] != L2_STATE_SIZE or counts.shape[0] != L2_COUNTS_SIZE:
        raise ValueError("l2_apply_rows: state and counts have the wrong size")
    for i in range(n):
        k = kind[i]
        if k & L2_SKIP:              # not applied; with L2_BREAK a bad row (counted by the caller)
            if k & L2_BREAK:
                state[L2_STATE_SYNCED] = 0
                counts[L2_BREAKS] += 1
            else:
                counts[L2_STALE] += 1
            continue
        snap = (k & L2_SNAPSHOT) != 0
        new_block = snap and ((not state[L2_STATE_PREV_SNAP]) or (k & L2_NEW_BLOCK))
        if state[L2_STATE_PENDING] and (group[i] != state[L2_STATE_GROUP] or new_block) \
                and not (snap and not new_block):
            n_out = _l2_emit(book, state, n_out, out_exch, out_local, out_row, out_levels)
        if new_block:
            _binance_side_clear(&book.bids)
            _binance_side_clear(&book.asks)
            state[L2_STATE_SYNCED] = 1
            state[L2_STATE_EVER] = 1
            counts[L2_SNAPSHOTS] += 1
        state[L2_STATE_PREV_SNAP] = snap
        if k & L2_BREAK:
            state[L2_STATE_SYNCED] = 0
            counts[L2_BREAKS] += 1
        if state[L2_STATE_SYNCED]:
            if k & L2_ASK:
                _binance_side_set(&book.asks, -price[i], amount[i])
            else:
                _binance_side_set(&book.bids, price[i], amount[i])
            counts[L2_APPLIED] += 1
        elif state[L2_STATE_EVER]:
            counts[L2_IN_GAP] += 1
        else:
            counts[L2_BEFORE_SNAPSHOT] += 1
        state[L2_STATE_PENDING] = 1
        state[L2_STATE_GROUP] = group[i]
        state[L2_STATE_EXCH] = ts_exch[i]
        state[L2_STATE_LOCAL] = ts_local[i]
        state[L2_STATE_ROW] = file_row[i]
    if final and state[L2_STATE_PENDING]:
        n_out = _l2_emit(book, state, n_out, out_exch, out_local, out_row, out_levels)
    return n_out
