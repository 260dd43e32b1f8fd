"""Order latencies from data: a table of (request, exchange, response) times, interpolated in time.

A row says: an order sent at ``req_ts`` reached the exchange at ``exch_ts`` and its response
reached the sender at ``resp_ts``.  The replay takes, for an order (or cancel) sent at time t,
the entry latency ``exch_ts - req_ts`` and the response latency ``resp_ts - exch_ts``
interpolated linearly in ``req_ts`` between the two rows around t (the first / last row's
values at the ends are not extrapolated: the table must cover the replay).  Files:

* CSV with a header ``req_ts_us,exch_ts_us,resp_ts_us`` (microseconds since the epoch);
* ``.npz`` in hftbacktest's order-latency format: one array with fields ``req_ts``,
  ``exch_ts``, ``resp_ts`` in nanoseconds (converted to microseconds).

Bad files are one-line errors naming the file, the row and the value: unsorted request times,
a negative latency, no rows; a table that does not cover the replayed period is refused by
:func:`clusterlob.replay.replay_arrays` (``check_covers``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._typing import ArrayLike, PathLike
from ..errors import ParameterError, TapeError

__all__ = ["OrderLatency", "load_order_latency"]


@dataclass(frozen=True, eq=False)
class OrderLatency:
    """Validated order-latency rows (int64 microseconds): request times (sorted), entry and
    response latencies (>= 0).  ``source`` names the file in error messages."""

    req_ts_us: np.ndarray
    entry_us: np.ndarray
    response_us: np.ndarray
    source: str = "order latency"

    @classmethod
    def from_times(cls, req_ts_us: ArrayLike, exch_ts_us: ArrayLike, resp_ts_us: ArrayLike,
                   source: str = "order latency") -> "OrderLatency":
        """Build from the three time columns, validating them (one-line errors)."""
        cols = []
        for name, values in (("req_ts", req_ts_us), ("exch_ts", exch_ts_us), ("resp_ts", resp_ts_us)):
            arr = np.asarray(values)
            if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.number):
                raise TapeError(f"{source}: `{name}` must be a column of numbers, got {arr.dtype} {arr.shape}")
            if arr.size and not np.isfinite(arr.astype(np.float64)).all():
                row = int(np.argmax(~np.isfinite(arr.astype(np.float64))))
                raise TapeError(f"{source}: `{name}` is not finite at row {row}: {arr[row]!r}")
            cols.append(arr.astype(np.int64))
        req, exch, resp = cols
        if not (req.shape == exch.shape == resp.shape):
            raise TapeError(f"{source}: columns of different lengths {req.shape[0]}, {exch.shape[0]}, {resp.shape[0]}")
        if req.shape[0] == 0:
            raise TapeError(f"{source}: no rows")
        back = np.flatnonzero(req[1:] < req[:-1])
        if back.size:
            row = int(back[0]) + 1
            raise TapeError(f"{source}: `req_ts` is not sorted: row {row} ({req[row]}) is earlier than "
                            f"row {row - 1} ({req[row - 1]})")
        entry, response = exch - req, resp - exch
        for name, lat in (("exch_ts - req_ts (entry latency)", entry), ("resp_ts - exch_ts (response latency)", response)):
            if (lat < 0).any():
                row = int(np.argmax(lat < 0))
                raise TapeError(f"{source}: negative latency at row {row}: {name} = {lat[row]} us")
        return cls(req, entry, response, source)

    def check_covers(self, first_us: int, last_us: int) -> None:
        """Refuse a table that does not cover [first_us, last_us] (the replayed events)."""
        lo, hi = int(self.req_ts_us[0]), int(self.req_ts_us[-1])
        if lo > first_us or hi < last_us:
            raise ParameterError(f"{self.source} covers requests from {lo} to {hi} us, but the replay runs "
                                 f"from {first_us} to {last_us} us: it must cover the whole period")

    def at(self, t_us: int) -> tuple:
        """(entry, response) latency in us for a request at t_us (the kernel's interpolation)."""
        i = int(np.searchsorted(self.req_ts_us, t_us, side="right")) - 1
        i = min(max(i, 0), self.req_ts_us.shape[0] - 1)
        if i + 1 >= self.req_ts_us.shape[0] or self.req_ts_us[i + 1] == self.req_ts_us[i]:
            return int(self.entry_us[i]), int(self.response_us[i])
        w = (t_us - self.req_ts_us[i]) / float(self.req_ts_us[i + 1] - self.req_ts_us[i])
        w = min(max(w, 0.0), 1.0)
        e = self.entry_us[i] + w * (self.entry_us[i + 1] - self.entry_us[i])
        r = self.response_us[i] + w * (self.response_us[i + 1] - self.response_us[i])
        return int(e + 0.5), int(r + 0.5)


def load_order_latency(path: PathLike) -> OrderLatency:
    """Read an order-latency file (CSV in us, or hftbacktest's ``.npz`` in ns); see the module."""
    path = Path(path)
    source = f"order-latency file {path}"
    if not path.exists():
        raise ParameterError(f"{source} does not exist")
    try:
        if path.suffix == ".npz":
            with np.load(path) as npz:
                arr = npz[npz.files[0]]
            names = arr.dtype.names or ()
            missing = [n for n in ("req_ts", "exch_ts", "resp_ts") if n not in names]
            if missing:
                raise TapeError(f"{source}: no field {missing[0]!r} (has {list(names)})")
            return OrderLatency.from_times(arr["req_ts"] // 1000, arr["exch_ts"] // 1000,
                                           arr["resp_ts"] // 1000, source)
        import csv
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise ParameterError(f"{source}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise TapeError(f"{source}: not a valid file ({exc})") from None
    if not rows:
        raise TapeError(f"{source}: empty")
    header = [h.strip() for h in rows[0]]
    want = ["req_ts_us", "exch_ts_us", "resp_ts_us"]
    if [h for h in header if h in want] != want:
        raise TapeError(f"{source}: the header must name {', '.join(want)}, got {', '.join(header)}")
    idx = [header.index(h) for h in want]
    cols: list[list[int]] = [[], [], []]
    for n, row in enumerate(rows[1:], start=1):
        for c, j in enumerate(idx):
            try:
                cols[c].append(int(row[j]))
            except (ValueError, IndexError):
                value = row[j] if j < len(row) else "(missing)"
                raise TapeError(f"{source}: row {n} column `{want[c]}` is not a whole number of "
                                f"microseconds: {value!r}") from None
    return OrderLatency.from_times(cols[0], cols[1], cols[2], source=source)
