"""Benchmark the feature importance on a feature-sized matrix (default 27.6M x 6, the log's week).

    PYTHONPATH=$PWD python tools/bench_importance.py [--rows 27600000] [--k 3] [--chunk-rows 65536]

Prints the time and the extra peak memory (process high-water RSS above the RSS after the
matrix and labels were made, reset through /proc/self/clear_refs) of
``feature_importance(z, labels, k)`` and of ``importance_for_centers(z, centers)`` (labelling
chunk by chunk with the compiled assignment kernel), and checks them against each other.
The memory claim is that the extra peak is a few chunks (``chunk_rows * 6 * 8`` bytes each),
independent of ``--rows``.  The machine may be shared with other work: times are wall clock.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kmeans import _reset_peak, _status_kb as _rss_kb  # noqa: E402  (one copy of the /proc helpers)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=27_600_000)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=1 << 16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from clusterlob.cluster.importance import feature_importance, importance_for_centers
    from clusterlob.cluster.kmeans import assign_clusters

    rng = np.random.default_rng(args.seed)
    centers = rng.normal(0, 1, (args.k, 6))
    z = np.empty((args.rows, 6))
    labels = np.empty(args.rows, dtype=np.int32)
    step = 1 << 20
    for start in range(0, args.rows, step):        # built chunk by chunk: no full-size temporaries
        m = min(step, args.rows - start)
        block = z[start:start + m]
        rng.standard_normal(out=block)
        lab = rng.integers(0, args.k, m)
        block += centers[lab]
        labels[start:start + m] = lab
    matrix_mb = z.nbytes / 2 ** 20
    print(f"rows {args.rows:,}, k {args.k}, chunk_rows {args.chunk_rows:,}; z matrix {matrix_mb:,.0f} MiB, "
          f"labels {labels.nbytes / 2 ** 20:,.0f} MiB")

    chunk = args.chunk_rows
    calls = (("feature_importance", lambda: feature_importance(z, labels, args.k, chunk_rows=chunk)),
             ("importance_for_centers", lambda: importance_for_centers(z, centers, chunk_rows=chunk)))
    for name, call in calls:
        base = _rss_kb("VmRSS")
        exact = _reset_peak()
        start = time.perf_counter()
        fi = call()
        seconds = time.perf_counter() - start
        extra_mb = (_rss_kb("VmHWM") - base) / 1024
        print(f"{name:<24} {seconds:7.2f} s  {args.rows / seconds / 1e6:6.1f} M rows/s  "
              f"extra peak {extra_mb:7.1f} MiB{'' if exact else ' (peak not reset: upper bound)'}  "
              f"top: {fi.summary(3)}")
    # labelling by the true centres is a different partition; check the two code paths on one
    lab_small, _, _ = assign_clusters(z[:200_000], centers)
    a = feature_importance(z[:200_000], lab_small, args.k)
    b = importance_for_centers(z[:200_000], centers)
    assert np.allclose(a.between_ss, b.between_ss) and np.allclose(a.within_ss, b.within_ss)
    print("check: importance_for_centers == feature_importance(assign_clusters(...)) on 200,000 rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
