"""Plain NumPy twins of the importance kernel (the specification the tests compare against)."""
import numpy as np


def two_pass(z, labels, k):
    """Textbook between- and within-cluster sums of squares per feature (two passes)."""
    z = np.asarray(z, dtype=float)
    grand = z.mean(axis=0)
    between = np.zeros(z.shape[1])
    within = np.zeros(z.shape[1])
    for c in range(k):
        rows = z[labels == c]
        if len(rows):
            m = rows.mean(axis=0)
            between += len(rows) * (m - grand) ** 2
            within += ((rows - m) ** 2).sum(axis=0)
    return between, within


def moments_update(z, labels, count, mean, m2):
    """Twin of ``_core.cluster_moments_update``: merge a block's moments (Chan) into the state.

    Returns the first row with a non-finite value (rows before it are added) or -1.
    """
    z = np.asarray(z, dtype=float)
    bad_rows = ~np.isfinite(z).all(axis=1)
    bad = int(np.argmax(bad_rows)) if bad_rows.any() else -1
    if bad >= 0:
        z, labels = z[:bad], labels[:bad]
    k, f = mean.shape
    n_b = np.bincount(labels, minlength=k).astype(np.int64)
    present = n_b > 0
    mean_b = np.zeros((k, f))
    m2_b = np.zeros((k, f))
    for c in np.flatnonzero(present):
        rows = z[labels == c]
        mean_b[c] = rows.mean(axis=0)
        m2_b[c] = ((rows - mean_b[c]) ** 2).sum(axis=0)
    n = count + n_b
    w_b = np.divide(n_b, n, out=np.zeros(k), where=n > 0)[:, None]
    delta = mean_b - mean
    m2 += m2_b + delta * delta * (count * w_b[:, 0])[:, None]
    mean += delta * w_b
    count[:] = n
    return bad
