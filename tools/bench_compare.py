"""Side-by-side comparisons for ``tools/bench.py --compare`` (benchmark-only packages).

On the data the pipeline just produced:

* scikit-learn's ``KMeans`` (k-means++, n_init 1, Lloyd, same tol and max_iter) on the same
  valid z-score rows as ``fit_model``; time and inertia against ours.
* a pandas rolling z-score, ``(x - rolling(W).mean()) / rolling(W).std()`` clipped like ours,
  on the 7-day raw features, against ``clusterlob.features.rolling_zscore`` on the same array.
* the plain-Python replay reference (``tests/twins/replay.py``) on the first N events,
  extrapolated (and labelled so) to all events, against the engine's measured time.

A package that is not importable in this interpreter is skipped with a note; scikit-learn and
pandas are never needed by clusterlob itself.
"""
from __future__ import annotations

import time

import numpy as np

from clusterlob.features import FEATURE_NAMES, rolling_zscore
from clusterlob.cluster.kmeans import kmeans, kmeans_plusplus
from clusterlob.replay import replay_arrays


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def compare_kmeans(z: np.ndarray, seed: int, ours: dict) -> dict:
    """Each library's own K-Means++ seeding, then both from the same K-Means++ centres."""
    try:
        import sklearn
        from sklearn.cluster import KMeans
    except ImportError as exc:
        return {"skipped": f"scikit-learn is not importable here ({exc})"}
    common = dict(n_clusters=3, n_init=1, tol=1e-4, max_iter=300, algorithm="lloyd")
    km, wall, cpu = _timed(lambda: KMeans(init="k-means++", random_state=seed, **common).fit(z))
    own = {"wall_s": wall, "cpu_s": cpu, "n_iter": int(km.n_iter_), "inertia": float(km.inertia_),
           "ours_wall_s": ours["wall_s"], "ours_cpu_s": ours["cpu_s"], "ours_n_iter": ours["n_iter"],
           "ours_inertia": ours["inertia"], "wall_ratio": ours["wall_s"] / wall, "cpu_ratio": ours["cpu_s"] / cpu,
           "inertia_rel_diff": (ours["inertia"] - km.inertia_) / km.inertia_}
    del km
    start, _ = kmeans_plusplus(z, 3, seed=seed)
    mine, o_wall, o_cpu = _timed(lambda: kmeans(z, 3, n_init=1, tol=1e-4, max_iter=300, init=start))
    km, wall, cpu = _timed(lambda: KMeans(init=start, **common).fit(z))
    same = {"wall_s": wall, "cpu_s": cpu, "n_iter": int(km.n_iter_), "inertia": float(km.inertia_),
            "ours_wall_s": o_wall, "ours_cpu_s": o_cpu, "ours_n_iter": int(mine.n_iter),
            "ours_inertia": float(mine.inertia), "wall_ratio": o_wall / wall, "cpu_ratio": o_cpu / cpu,
            "inertia_rel_diff": (mine.inertia - km.inertia_) / km.inertia_}
    return {"package": f"scikit-learn {sklearn.__version__}", "rows": int(z.shape[0]),
            "own_seeding": own, "same_start": same}


def compare_rolling(raw: np.ndarray, settings) -> dict:
    try:
        import pandas as pd
    except ImportError as exc:
        return {"skipped": f"pandas is not importable here ({exc})"}
    window, clip = settings.window, settings.z_clip

    def with_pandas():
        df = pd.DataFrame(raw, columns=list(FEATURE_NAMES), copy=False)
        r = df.rolling(window)
        return ((df - r.mean()) / r.std()).clip(-clip, clip).to_numpy()

    pz, p_wall, p_cpu = _timed(with_pandas)
    (oz, _, _), o_wall, o_cpu = _timed(lambda: rolling_zscore(raw, settings))
    # zero-variance windows: ours gives 0 by rule, pandas 0/0 (NaN) or a huge value from a
    # rounding-level std (clipped); compare where both are finite and inside the clip
    inside = np.isfinite(pz) & np.isfinite(oz) & (np.abs(pz) < clip) & (np.abs(oz) < clip)
    diff = np.abs(pz[inside] - oz[inside])
    return {"package": f"pandas {pd.__version__}", "rows": int(raw.shape[0]), "window": window,
            "wall_s": p_wall, "cpu_s": p_cpu, "ours_wall_s": o_wall, "ours_cpu_s": o_cpu,
            "speedup_wall": p_wall / o_wall, "finite_pandas": int(np.isfinite(pz).sum()),
            "finite_ours": int(np.isfinite(oz).sum()), "compared": int(diff.shape[0]),
            "max_abs_diff": float(diff.max()) if diff.size else float("nan"),
            "share_within_1e-6": float((diff <= 1e-6).mean()) if diff.size else float("nan")}


def compare_replay(events: tuple, tick: float, config, n_prefix: int, engine_wall_s: float) -> dict:
    from bench_replay import load_reference

    ref = load_reference()
    trade_ts, book_ts = events[0], events[5]
    n = trade_ts.shape[0] + book_ts.shape[0]
    m = min(n_prefix, n)
    # the time of the m-th event of the merged stream, then every event up to it
    cut = np.partition(np.concatenate([trade_ts[:m], book_ts[:m]]), m - 1)[m - 1]
    k_t = int(np.searchsorted(trade_ts, cut, side="right"))
    k_b = int(np.searchsorted(book_ts, cut, side="right"))
    sub = [a[:k_t] for a in events[:5]] + [a[:k_b] for a in events[5:]]
    out, wall, cpu = _timed(lambda: ref.reference_replay(*sub, tick, config))
    check, e_wall, _ = _timed(lambda: replay_arrays(*sub, tick_size=tick, config=config))
    same = (len(check.fills) == len(out["fills"]) and check.summary.ending_inventory == out["inventory"])
    k = k_t + k_b
    rate = k / wall
    return {"events": k, "wall_s": wall, "cpu_s": cpu, "events_per_s": rate,
            "extrapolated_all_events_s": n / rate, "engine_all_events_s": engine_wall_s,
            "engine_prefix_s": e_wall, "speedup_extrapolated": (n / rate) / engine_wall_s,
            "engine_equals_reference_on_prefix": bool(same)}


def run_comparisons(out: dict, seed: int, reference_events: int, say) -> dict:
    """Every comparison on the pipeline's data; frees what it no longer needs as it goes."""
    res = {}
    model = out["model"]
    say("compare: scikit-learn KMeans on the same rows")
    res["kmeans"] = compare_kmeans(out.pop("z_valid"), seed,
                                   {"wall_s": out["kmeans_wall_s"], "cpu_s": out["kmeans_cpu_s"],
                                    "n_iter": model.n_iter, "inertia": model.inertia})
    say("compare: pandas rolling z-scores on the raw features")
    feats = out.pop("feats")
    raw = np.concatenate([f.raw for f in feats])
    del feats
    res["rolling_zscore"] = compare_rolling(raw, out["settings"])
    del raw
    say(f"compare: plain-Python replay reference on the first {reference_events:,} events")
    res["replay"] = compare_replay(out["events"], out["tick"], out["config"], reference_events,
                                   out["replay_wall_s"])
    return res


def comparison_lines(res: dict) -> list:
    lines = []
    k = res.get("kmeans", {})
    if "skipped" in k:
        lines.append(f"K-Means: skipped: {k['skipped']}")
    elif k:
        for key, what in (("own_seeding", "each its own k-means++ seeding"),
                          ("same_start", "both from the same k-means++ centres")):
            v = k[key]
            lines.append(f"K-Means on {k['rows']:,} rows, {what}: clusterlob {v['ours_wall_s']:.2f} s wall / "
                         f"{v['ours_cpu_s']:.2f} s CPU, {v['ours_n_iter']} iterations, inertia {v['ours_inertia']:.8g}; "
                         f"{k['package']} {v['wall_s']:.2f} s / {v['cpu_s']:.2f} s CPU, {v['n_iter']} iterations, "
                         f"inertia {v['inertia']:.8g}; ours/sklearn {v['wall_ratio']:.2f} wall, {v['cpu_ratio']:.2f} CPU; "
                         f"inertia rel. diff {v['inertia_rel_diff']:+.2e}")
    r = res.get("rolling_zscore", {})
    if "skipped" in r:
        lines.append(f"rolling z-score: skipped: {r['skipped']}")
    elif r:
        lines.append(f"rolling z-score (W {r['window']}) on {r['rows']:,} x 6: clusterlob {r['ours_wall_s']:.2f} s, "
                     f"{r['package']} {r['wall_s']:.2f} s ({r['speedup_wall']:.1f}x); on the {r['compared']:,} z both give "
                     f"inside the clip: {100 * r['share_within_1e-6']:.4f}% within 1e-6, max |diff| "
                     f"{r['max_abs_diff']:.2e}; finite z: ours {r['finite_ours']:,}, pandas {r['finite_pandas']:,}")
    p = res.get("replay", {})
    if p:
        lines.append(f"replay reference (plain Python) on {p['events']:,} events: {p['wall_s']:.2f} s = "
                     f"{p['events_per_s'] / 1e3:,.0f} k events/s; EXTRAPOLATED to all events "
                     f"{p['extrapolated_all_events_s']:,.0f} s vs engine {p['engine_all_events_s']:.2f} s measured "
                     f"({p['speedup_extrapolated']:,.0f}x); engine == reference on the prefix: "
                     f"{p['engine_equals_reference_on_prefix']}")
    return lines
