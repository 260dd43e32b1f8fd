# Order-flow imbalance of the book (Cont, Kukanov and Stoikov 2014; per level as in the
# multi-level OFI of Xu, Gould and Howison): one pass over consecutive snapshots.

from libc.stdint cimport int64_t


cdef inline double _side_flow(double p, double q, double P, double Q, double better) noexcept nogil:
    # Size added minus size removed at one level of one side between two snapshots
    # (old price P, size Q -> new p, q).  better = +1 for bids, -1 for asks: a better price is
    # a new queue (all of q added), a worse one means the old queue went (all of Q removed).
    if p != p or q != q or P != P or Q != Q:
        return 0.0      # a missing level on either side of the pair contributes nothing
    if p == P:
        return q - Q
    if better * (p - P) > 0:
        return q
    return -Q


def book_flow_events(const double[:, :] bid_px, const double[:, :] bid_sz,
                     const double[:, :] ask_px, const double[:, :] ask_sz, int levels,
                     double[:, ::1] prev, int64_t[::1] has_prev,
                     double[::1] e_touch, double[::1] e_depth):
    """Book OFI of every snapshot against the one before it.

    IN: bid/ask px/sz (n, L) snapshots in time order; levels D <= L.  IN/OUT: prev (4, D)
    rows bid px, bid sz, ask px, ask sz of the last snapshot before these; has_prev (1,)
    whether prev holds one.  OUT: e_touch (n,) the level-1 OFI, e_depth (n,) the sum over
    levels 1..D; for each level e = bid flow - ask flow (see _side_flow), so size joining
    the bids or leaving the asks is positive.  The first snapshot ever has e = 0.
    """
    cdef Py_ssize_t n = bid_px.shape[0], i, l
    cdef double e, total
    with nogil:
        for i in range(n):
            total = 0.0
            e = 0.0
            if has_prev[0]:
                for l in range(levels):
                    e = (_side_flow(bid_px[i, l], bid_sz[i, l], prev[0, l], prev[1, l], 1.0)
                         - _side_flow(ask_px[i, l], ask_sz[i, l], prev[2, l], prev[3, l], -1.0))
                    if l == 0:
                        e_touch[i] = e
                    total += e
            else:
                e_touch[i] = 0.0
            e_depth[i] = total
            for l in range(levels):
                prev[0, l] = bid_px[i, l]
                prev[1, l] = bid_sz[i, l]
                prev[2, l] = ask_px[i, l]
                prev[3, l] = ask_sz[i, l]
            has_prev[0] = 1
