"""Rolling windows: fit on the training days, label and score the test days out of sample.

Window ``i`` trains on calendar days ``[i, i + T)`` of the tape and tests on the next
``test_days`` days (step ``step_days``).  A window is fitted only when every one of its
days is in the tape and has at least ``min_day_rows`` valid feature rows; otherwise it is
skipped and the reason reported (a gap is never bridged by silently merging days).

One window (:func:`_fit_one`; runs of consecutive windows are tasks on any executor)
reads only its own days from the feature cache: K-Means++ on the training days' valid
z-scores (seeded), rule alignment, cluster ids of every trade of the test days (and of
the next window's first test day, for label stability), and the OFI of every cluster on the grid covering the last training
day and the test days.  The roles are mapped afterwards, in the calling process, so the
distance alignment can use the first fitted window's centres (Strategy A); the OFI of a
role is the sum of its clusters' OFI.  A role no cluster carries is *unassigned* that
window: it is reported, it gets no IC and its taker position is flat.

The taker (``clusterlob.timeframes``): at bucket ``b``'s close, position
``sign(OFI[b])`` when ``|OFI[b]|`` beats the rolling quantile of ``|OFI|`` over earlier
buckets (the last training day and the test day's earlier buckets, labelled with this
window's model); it earns ``r_1[b]``, minus the taker fee on both sides.  The last test
bucket has no next mid inside the window and is not scored.
"""
from __future__ import annotations

import math
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .._io import check_choice, check_int, check_number
from ..cluster.fit import FitSettings
from .._typing import PathLike
from ..errors import ClusterlobError, ParameterError
from ..features.settings import FeatureSettings
from ..signals.ic import WEIGHTINGS, ICAggregate, ICRow, ICTable, aggregate_ic, ic_table
from ..cluster.kmeans import assign_clusters
from ..cluster.model import ClusterModel, fit_model
from ..cluster.roles import (ROLE_NAMES, UNASSIGNED, Stability, align_to_reference, adjusted_rand_index,
                     label_stability)
from ..signals.ofi import ALL_TRADES, BucketSignals, BucketGrid, BucketAccumulator, cluster_groups, covered_buckets
from ..tape.types import day_start_us
from ..signals.timeframes import ThresholdRule, rolling_threshold, taker_backtest, taker_positions
from .cache import load_cached_day, load_cached_flow, load_cached_mids

__all__ = ["ALIGNMENTS", "DEFAULT_FIT", "WalkForwardSettings", "WindowPlan", "plan_windows", "WindowFit",
           "WindowResult", "StabilityRow", "fit_windows", "score_windows", "stability_rows",
           "aggregate"]

ALIGNMENTS = ("rule", "distance")
#: The walk-forward's fit: K-Means++ defaults, centres fit on a seeded sample of 1 M rows.
DEFAULT_FIT = FitSettings(fit_sample=1_000_000)
_DAY = 86_400_000_000


@dataclass(frozen=True)
class WalkForwardSettings:
    """How the walk-forward runs (the feature settings travel separately).

    Parameters
    ----------
    train_days, test_days, step_days : int
        T training days, then ``test_days`` test days; windows start every ``step_days``
        (None, the default: ``test_days``).  A step shorter than ``test_days`` is refused:
        the test days of consecutive windows would overlap, so the concatenated out-of-sample
        equity would count a day twice and the IC windows would not be independent.
    fit : FitSettings
        K-Means++ and the rule alignment (k, n_init, seed, fit_sample, max_iter, tol, margin);
        ``fit_sample`` rows (seeded) fit the centres, all training rows are labelled.  Default
        :data:`DEFAULT_FIT`: ``FitSettings(fit_sample=1_000_000)``.
    alignment : {"rule", "distance"}
        Roles by rule (default) or by distance to the first fitted window's centres.
    bucket_s : float
        OFI bucket width in seconds.
    horizons : tuple of int
        IC horizons in buckets (1 = the next bucket's return).
    threshold : ThresholdRule
        Taker threshold (quantile of past ``|OFI|``).
    fee_bps : float
        Taker fee per side.
    min_day_rows : int
        A day with fewer valid feature rows counts as empty; windows containing it are skipped.
    """

    train_days: int = 7
    test_days: int = 1
    step_days: int | None = None
    fit: FitSettings = DEFAULT_FIT
    alignment: str = "rule"
    bucket_s: float = 300.0
    horizons: tuple = (1,)
    threshold: ThresholdRule = field(default_factory=ThresholdRule)
    fee_bps: float = 3.0
    min_day_rows: int = 1

    def __post_init__(self):
        set_ = object.__setattr__
        if not isinstance(self.fit, FitSettings):
            raise ParameterError(f"`fit` must be a FitSettings, got {type(self.fit).__name__}")
        for name in ("train_days", "test_days", "min_day_rows"):
            set_(self, name, check_int(name, getattr(self, name), 1))
        step = self.test_days if self.step_days is None else check_int("step_days", self.step_days, 1)
        set_(self, "step_days", step)
        if step < self.test_days:
            raise ParameterError(f"`step_days` must be >= `test_days` ({self.test_days}), got {self.step_days}: "
                                 f"overlapping test days would be counted twice")
        check_choice("alignment", self.alignment, ALIGNMENTS)
        set_(self, "bucket_s", check_number("bucket_s", self.bucket_s, 0, _DAY / 1e6, lo_open=True))
        set_(self, "fee_bps", check_number("fee_bps", self.fee_bps, 0))
        if _DAY % int(round(self.bucket_s * 1e6)) or self.bucket_s * 1e6 != int(round(self.bucket_s * 1e6)):
            raise ParameterError(f"`bucket_s` must divide a day into whole microsecond buckets, got {self.bucket_s!r}")
        hs = tuple(self.horizons) if isinstance(self.horizons, (tuple, list)) else ()
        if not hs:
            raise ParameterError(f"`horizons` must be integers >= 1, got {self.horizons!r}")
        set_(self, "horizons", tuple(check_int("horizons", h, 1) for h in hs))
        if not isinstance(self.threshold, ThresholdRule):
            raise ParameterError(f"`threshold` must be a ThresholdRule, got {type(self.threshold).__name__}")

    def to_dict(self) -> dict:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["fit"] = self.fit.to_dict()
        d["horizons"] = list(self.horizons)
        d["threshold"] = self.threshold.to_dict()
        return d


# -- planning ------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowPlan:
    """Days of one window and, when it cannot run, why (``skip_reason``)."""

    index: int
    train_days: tuple
    test_days: tuple
    skip_reason: str | None = None

    def to_dict(self) -> dict:
        return {"index": self.index, "train_days": list(self.train_days),
                "test_days": list(self.test_days), "skip_reason": self.skip_reason}


def calendar_days(first: str, last: str) -> list[str]:
    """Every UTC day from ``first`` to ``last``, inclusive."""
    from ..tape.types import day_of_us
    return [day_of_us(t) for t in range(day_start_us(first), day_start_us(last) + 1, _DAY)]


def plan_windows(valid_rows: dict, wf: WalkForwardSettings) -> list[WindowPlan]:
    """Windows over the calendar days from the tape's first to its last day.

    Parameters
    ----------
    valid_rows : dict
        ``{date: valid feature rows}`` of every day in the tape.
    wf : WalkForwardSettings

    Returns
    -------
    list of WindowPlan
        Empty when the tape is shorter than one window.
    """
    if not valid_rows:
        return []
    days = calendar_days(min(valid_rows), max(valid_rows))
    span = wf.train_days + wf.test_days
    plans = []
    for n, i in enumerate(range(0, len(days) - span + 1, wf.step_days or wf.test_days)):
        train, test = tuple(days[i:i + wf.train_days]), tuple(days[i + wf.train_days:i + span])
        missing = [d for d in train + test if d not in valid_rows]
        empty = [d for d in train + test if d in valid_rows and valid_rows[d] < wf.min_day_rows]
        reasons = []
        if missing:
            reasons.append(f"days not in the tape (gap): {', '.join(missing)}")
        if empty:
            reasons.append(f"days with fewer than {wf.min_day_rows} valid feature rows: "
                           + ", ".join(f"{d} ({valid_rows[d]})" for d in empty))
        reason = "; ".join(reasons) or None
        plans.append(WindowPlan(n, train, test, reason))
    return plans


# -- one window (runs on an executor) ---------------------------------------------------------

@dataclass
class WindowFit:
    """What a worker returns for one window: the model and per-cluster data.

    ``cluster_ids`` maps a day to the cluster id (int8, -1 without valid features) of every
    trade of that day; ``signals`` holds the OFI of every cluster (groups ``cluster j``).
    """

    plan: WindowPlan
    model: ClusterModel
    train_rows: int
    signals: BucketSignals
    test_mask: np.ndarray
    cluster_ids: dict


class _DayStore:
    """Days a worker has read, kept while later windows of its task still need them.

    Consecutive windows share all but one training day, so a task of consecutive windows
    reads every day once instead of once per window.
    """

    def __init__(self, tape_dir: str, cache_dir: str, settings: FeatureSettings):
        self.tape_dir, self.cache_dir, self.settings = tape_dir, cache_dir, settings
        self.time_col = "ts_local_us" if settings.time_key == "local" else "ts_exch_us"
        self._features: dict = {}
        self._trades: dict = {}

    def keep_only(self, dates) -> None:
        for store in (self._features, self._trades):
            for d in [d for d in store if d not in dates]:
                del store[d]

    def features(self, date: str):
        """(rows with valid features, their z (n, 6), trades of the day)."""
        if date not in self._features:
            day = load_cached_day(self.cache_dir, self.settings, date)
            assert day.z is not None             # loaded with z=True
            z = np.compress(day.valid, day.z, axis=0)
            self._features[date] = (day.trade_index[day.valid], z, int(day.counts["trades"]))
        return self._features[date]

    def trades(self, date: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, side, amount) of every trade of the day."""
        if date not in self._trades:
            self._trades[date] = load_cached_flow(self.cache_dir, self.settings, date)
        return self._trades[date]

    def clusters(self, date: str, centers: np.ndarray) -> np.ndarray:
        """Cluster id of every trade of the day (-1 without valid features)."""
        rows, z, n_trades = self.features(date)
        ids = np.full(n_trades, -1, dtype=np.int8)
        if rows.size:
            ids[rows] = assign_clusters(z, centers)[0]
        return ids


def _window_days(plan: WindowPlan, extra_day: str | None) -> set:
    return set(plan.train_days) | set(plan.test_days) | ({extra_day} if extra_day else set())


def _fit_one(store: _DayStore, wf: WalkForwardSettings, plan: WindowPlan, extra_day: str | None) -> WindowFit:
    parts = [store.features(d) for d in plan.train_days]
    z = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    model, labels = fit_model(z, store.settings, wf.fit,
                              source={"tape": str(store.tape_dir), "days": list(plan.train_days),
                                      "train_days": list(plan.train_days)})
    train_rows = int(z.shape[0])
    del z
    last_rows, _, last_trades = parts[-1]
    prev_ids = np.full(last_trades, -1, dtype=np.int8)
    prev_ids[last_rows] = labels[labels.shape[0] - last_rows.shape[0]:]
    del labels, parts
    ids = {d: store.clusters(d, model.centers_z) for d in plan.test_days}
    if extra_day is not None and extra_day not in ids:
        ids[extra_day] = store.clusters(extra_day, model.centers_z)

    prev_day = plan.train_days[-1]
    grid_days = (prev_day,) + plan.test_days
    grid = BucketGrid.for_days(list(grid_days), int(round(wf.bucket_s * 1e6)))
    acc = BucketAccumulator(grid, cluster_groups(wf.fit.k), time_key=store.time_col)
    acc.add_trades(*store.trades(prev_day), prev_ids)
    for d in plan.test_days:
        acc.add_trades(*store.trades(d), ids[d])
        acc.add_book(*load_cached_mids(store.cache_dir, store.settings, d))
    signals = acc.finish(covered_buckets(grid, list(grid_days)))
    test_mask = signals.covered & (grid.starts_us >= day_start_us(plan.test_days[0]))
    return WindowFit(plan, model, train_rows, signals, test_mask, ids)


def _fit_task(tape_dir: str, cache_dir: str, settings: FeatureSettings, wf: WalkForwardSettings,
              jobs: list) -> list:
    """Fit consecutive windows in one worker; a failed window gives its error text."""
    store = _DayStore(tape_dir, cache_dir, settings)
    out: list[WindowFit | str] = []
    for plan, extra_day in jobs:
        store.keep_only(_window_days(plan, extra_day))
        try:
            out.append(_fit_one(store, wf, plan, extra_day))
        except ClusterlobError as exc:
            out.append(str(exc))
    return out


def fit_windows(tape_dir: PathLike, cache_dir: PathLike, settings: FeatureSettings, wf: WalkForwardSettings, plans: Sequence[WindowPlan],
                *, executor: Executor | None = None, tasks: int | None = None, progress: Callable[[WindowPlan, int, int], None] | None = None) -> dict:
    """Fit every runnable window; returns ``{index: WindowFit or error text}``.

    The windows are split into ``tasks`` runs of consecutive windows (default: the
    executor's worker count, or one per window when it is unknown; one run without an
    executor), so a worker reads each day once.  A window whose fit raises a
    :class:`ClusterlobError` is reported with the message.  Results do not depend on the
    split.
    """
    runnable = [p for p in plans if p.skip_reason is None]
    by_index = {p.index: p for p in runnable}
    jobs = []
    for p in runnable:
        nxt = by_index.get(p.index + 1)
        jobs.append((p, nxt.test_days[0] if nxt is not None else None))
    if not jobs:
        return {}
    if tasks is None:
        tasks = 1 if executor is None else int(getattr(executor, "_max_workers", len(jobs)))
    tasks = max(1, min(int(tasks), len(jobs)))
    bounds = np.linspace(0, len(jobs), tasks + 1).round().astype(int)
    chunks = [jobs[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    args = (str(tape_dir), str(cache_dir), settings, wf)
    out: dict = {}
    if executor is None:
        results = (_fit_task(*args, chunk) for chunk in chunks)
    else:
        futures = [executor.submit(_fit_task, *args, chunk) for chunk in chunks]
        results = (f.result() for f in futures)
    for chunk, fitted in zip(chunks, results):
        for (plan, _), item in zip(chunk, fitted):
            out[plan.index] = item
            if progress is not None:
                progress(plan, len(out), len(jobs))
    return out


# -- scoring in the calling process --------------------------------------------------------------

@dataclass(frozen=True)
class WindowResult:
    """One window, out of sample.

    Attributes
    ----------
    plan : WindowPlan
    status : str
        ``"fitted"`` or ``"skipped"`` (``reason`` says why).
    model : ClusterModel or None
        Centres (z units), rule roles and scores, counts, inertia.
    roles_rule, roles_distance : ndarray, shape (k,), int8
        Roles of the clusters by rule and by distance to the reference (first fitted) window.
    distances : ndarray, shape (k,)
        Distance (z units) of each centre to its matched reference centre.
    roles : ndarray, shape (k,), int8
        The roles used (by the chosen alignment).
    unassigned : tuple of str
        Roles no cluster carries this window: no IC, flat taker.
    ic : ICTable or None
    taker : tuple of TakerResult
        Per group (``all`` and the roles; size weighting), honest rule only.
    pnl_times_us : ndarray, shape (n,)
        Start of every test bucket.
    pnl : dict
        ``{group: (n,) net log return per test bucket}`` (0 where flat or not scored).
    notes : tuple of str
    """

    plan: WindowPlan
    status: str
    reason: str | None = None
    model: ClusterModel | None = None
    train_rows: int = 0
    roles_rule: np.ndarray | None = None
    roles_distance: np.ndarray | None = None
    distances: np.ndarray | None = None
    roles: np.ndarray | None = None
    unassigned: tuple = ()
    ic: ICTable | None = None
    taker: tuple = ()
    pnl_times_us: np.ndarray | None = None
    pnl: dict = field(default_factory=dict)
    notes: tuple = ()

    def to_dict(self) -> dict:
        d = {"index": self.plan.index, "train_days": list(self.plan.train_days),
             "test_days": list(self.plan.test_days), "status": self.status, "reason": self.reason}
        if self.model is None:
            return d
        from ..cluster.roles import role_name
        assert (self.roles_rule is not None and self.roles_distance is not None    # set with the model
                and self.distances is not None and self.roles is not None)
        d.update({
            "train_rows": self.train_rows,
            "centers_z": self.model.centers_z.tolist(),
            "counts": self.model.counts.tolist(),
            "inertia": self.model.inertia,
            "directional_score": self.model.directional_score.tolist(),
            "opportunistic_score": self.model.opportunistic_score.tolist(),
            "roles_rule": [role_name(r) for r in self.roles_rule],
            "roles_distance": [role_name(r) for r in self.roles_distance],
            "distance_to_reference": self.distances.tolist(),
            "roles": [role_name(r) for r in self.roles],
            "unassigned_roles": list(self.unassigned),
            "ic": None if self.ic is None else self.ic.to_dict(),
            "taker": [t.to_dict() for t in self.taker],
            "notes": list(self.notes),
        })
        return d


def _role_signals(sig: BucketSignals, roles: np.ndarray) -> tuple[BucketSignals, tuple]:
    """OFI per role (sum of its clusters' rows) and the roles no cluster carries."""
    codes: list[int | None]
    names, codes, size, count, trades = [ALL_TRADES], [None], [sig.ofi_size[0]], [sig.ofi_count[0]], [sig.trades[0]]
    unassigned: list[str] = []
    for code, name in enumerate(ROLE_NAMES):
        rows = [1 + c for c in np.flatnonzero(roles == code)]
        if not rows:
            unassigned.append(name)
            continue
        names.append(name)
        codes.append(code)
        size.append(sig.ofi_size[rows].sum(axis=0))
        count.append(sig.ofi_count[rows].sum(axis=0))
        trades.append(sig.trades[rows].sum())
    out = BucketSignals(sig.grid, tuple(names), tuple(codes), np.array(size), np.array(count),
                        np.array(trades, dtype=np.int64), sig.mid_close, sig.covered,
                        sig.unknown_side, sig.outside, sig.time_key)
    return out, tuple(unassigned)


def _nan_row(group, weighting, horizon) -> ICRow:
    return ICRow(group, weighting, horizon, math.nan, math.nan, 0, math.nan, math.nan)


def _score(fit: WindowFit, roles: np.ndarray, wf: WalkForwardSettings):
    sig, unassigned = _role_signals(fit.signals, roles)
    label = ",".join(fit.plan.test_days)
    notes = [f"role {r} unassigned: no IC, taker flat" for r in unassigned]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            table = ic_table(sig, wf.horizons, WEIGHTINGS, buckets=fit.test_mask, label=label)
        except ParameterError as exc:
            table = None
            notes.append(f"no IC: {exc}")
    notes += [str(w.message) for w in caught]
    if table is not None:
        rows = list(table.rows) + [_nan_row(r, w, h) for w in WEIGHTINGS for h in wf.horizons
                                   for r in unassigned]
        table = ICTable(table.label, tuple(rows), table.bucket_s)
    frnb = sig.frnb()
    scored = fit.test_mask & np.isfinite(frnb)
    taker, pnl = [], {}
    cost = 2.0 * wf.fee_bps * 1e-4
    for group in (ALL_TRADES,) + ROLE_NAMES:
        ofi = sig.ofi(group, "size") if group in sig.group_names else np.zeros(sig.grid.n_buckets)
        thr = rolling_threshold(np.abs(ofi), sig.covered, wf.threshold)
        taker.append(taker_backtest(ofi, frnb, thr, fit.test_mask, fee_bps=wf.fee_bps,
                                    bucket_us=sig.grid.bucket_us, timeframe_min=wf.bucket_s / 60,
                                    group=group, weighting="size"))
        pos = taker_positions(ofi, thr).astype(np.float64)
        net = np.where(scored, pos * np.where(scored, frnb, 0.0) - cost * (pos != 0), 0.0)
        pnl[group] = net[fit.test_mask]
    times = sig.grid.starts_us[fit.test_mask]
    return table, tuple(taker), times, pnl, tuple(unassigned), tuple(notes)


def score_windows(plans: Sequence[WindowPlan], fits: dict, wf: WalkForwardSettings) -> list[WindowResult]:
    """Map roles (both alignments), compute each window's IC and taker PnL, in window order."""
    reference = None
    results = []
    for p in plans:
        fit = fits.get(p.index)
        if p.skip_reason is not None or not isinstance(fit, WindowFit):
            reason = p.skip_reason or f"fit failed: {fit}"
            results.append(WindowResult(p, "skipped", reason))
            continue
        model = fit.model
        if reference is None:
            reference = model
        dist = align_to_reference(model.centers_z, reference.centers_z, reference.roles)
        roles = model.roles if wf.alignment == "rule" else dist.roles
        table, taker, times, pnl, unassigned, notes = _score(fit, roles, wf)
        results.append(WindowResult(p, "fitted", None, model, fit.train_rows, model.roles.copy(),
                                    dist.roles.copy(), dist.distances.copy(), np.asarray(roles).copy(),
                                    unassigned, table, taker, times, pnl, notes))
    return results


@dataclass(frozen=True)
class StabilityRow:
    """Roles of the same trades (window ``b``'s first test day) under two consecutive fits."""

    window_a: int
    window_b: int
    date: str
    rule: Stability
    distance: Stability
    adjusted_rand: float

    def to_dict(self) -> dict:
        return {"window_a": self.window_a, "window_b": self.window_b, "date": self.date,
                "rule": self.rule.to_dict(), "distance": self.distance.to_dict(),
                "adjusted_rand": self.adjusted_rand}


def _roles_of(ids: np.ndarray, cluster_roles: np.ndarray) -> np.ndarray:
    out = np.full(ids.shape[0], UNASSIGNED, dtype=np.int8)
    ok = ids >= 0
    out[ok] = cluster_roles[ids[ok]]
    return out


def stability_rows(results: Sequence[WindowResult], fits: dict) -> list[StabilityRow]:
    """Label stability between consecutive fitted windows, under both alignments."""
    rows = []
    for a, b in zip(results, results[1:]):
        if a.status != "fitted" or b.status != "fitted" or b.plan.index != a.plan.index + 1:
            continue
        date = b.plan.test_days[0]
        ids_a, ids_b = fits[a.plan.index].cluster_ids.get(date), fits[b.plan.index].cluster_ids[date]
        if ids_a is None:
            continue
        valid = ids_a >= 0
        assert a.roles_rule is not None and b.roles_rule is not None     # fitted windows have roles
        assert a.roles_distance is not None and b.roles_distance is not None
        rule = label_stability(_roles_of(ids_a, a.roles_rule), _roles_of(ids_b, b.roles_rule), valid=valid)
        dist = label_stability(_roles_of(ids_a, a.roles_distance), _roles_of(ids_b, b.roles_distance),
                               valid=valid)
        ari = adjusted_rand_index(ids_a[valid], ids_b[valid]) if valid.sum() >= 2 else math.nan
        rows.append(StabilityRow(a.plan.index, b.plan.index, date, rule, dist, float(ari)))
    return rows


def aggregate(results: Sequence[WindowResult]) -> ICAggregate | None:
    """Out-of-sample IC across fitted windows (``clusterlob.ic.aggregate_ic``), or None."""
    tables = [r.ic for r in results if r.status == "fitted" and r.ic is not None]
    return aggregate_ic(tables) if tables else None
