"""Plain twin of the tape kernel (``_kernels/tape.pxi``)."""
import numpy as np


def count_backwards_steps(ts_us) -> int:
    """Rows whose time is earlier than the row before them."""
    return int((np.diff(np.asarray(ts_us, dtype=np.int64)) < 0).sum())
