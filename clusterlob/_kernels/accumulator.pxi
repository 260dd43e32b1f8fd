# The O(1) signal accumulator: two exponentially decayed sums of trade flow.
#
# alpha  = sum of s * amount over trades whose role feeds alpha,
# hazard = sum of amount over trades whose role feeds hazard,
# both decayed with half-life H (factor exp(-ln2 * dt / H) per elapsed dt) and read either as a
# share of the total flow decayed alike (norm "flow", the default: the same number on a quiet and
# a busy day) or in units of `scale` exponentially weighted mean trade sizes (norm "trades", the
# research log's form; weight w per trade, every signed trade).
# A few scalars in a struct plus inline add / value functions (pandas' rolling-kernel style);
# the replay engine embeds the struct, SignalAccumulator exposes it to Python.
# Reference twin: tests/reference_replay.py (ReferenceAccumulator).

from libc.math cimport exp, log
from libc.stdint cimport int64_t, int8_t

SIGNAL_NORMS = ("flow", "trades")    # index = AccState.norm

cdef struct AccState:
    double alpha_sum           # decayed sum of s * amount, as of last_ts_us
    double hazard_sum          # decayed sum of amount, as of last_ts_us
    double total_sum           # decayed sum of every signed trade's amount, as of last_ts_us
    double mean_size           # EW mean trade size (0 until the first trade)
    int64_t last_ts_us
    int has_data
    double decay_per_us        # ln 2 / half-life in microseconds
    double size_weight
    double scale               # signal unit, in mean trade sizes (norm "trades")
    int norm                   # 0 "flow": share of the total flow; 1 "trades": mean sizes


cdef inline void acc_init(AccState* a, double decay_per_us, double size_weight, double scale,
                          int norm) noexcept nogil:
    a.alpha_sum = 0.0
    a.hazard_sum = 0.0
    a.total_sum = 0.0
    a.norm = norm
    a.mean_size = 0.0
    a.last_ts_us = 0
    a.has_data = 0
    a.decay_per_us = decay_per_us
    a.size_weight = size_weight
    a.scale = scale


cdef inline void acc_add(AccState* a, int64_t ts_us, double sign, double amount,
                         double to_alpha, double to_hazard) noexcept nogil:
    """Decay to ts_us, update the mean size, add the trade to the sum(s) its role feeds.

    to_alpha / to_hazard are 1.0 or 0.0 (acc_weight): multiplying instead of branching
    keeps a stream of mixed roles free of mispredicted branches; adding 0.0 changes nothing.
    """
    cdef double f
    if a.has_data:
        if ts_us > a.last_ts_us:
            f = exp(-a.decay_per_us * <double>(ts_us - a.last_ts_us))
            a.alpha_sum = a.alpha_sum * f
            a.hazard_sum = a.hazard_sum * f
            a.total_sum = a.total_sum * f
            a.last_ts_us = ts_us
        a.mean_size = a.mean_size + a.size_weight * (amount - a.mean_size)
    else:
        a.has_data = 1
        a.last_ts_us = ts_us
        a.mean_size = amount
    a.alpha_sum = a.alpha_sum + to_alpha * (sign * amount)
    a.hazard_sum = a.hazard_sum + to_hazard * amount
    a.total_sum = a.total_sum + amount


cdef inline int acc_role_key(int code) noexcept nogil:
    """A role code to compare trade roles with: -1 (none) can match no trade, not even an unassigned one."""
    return code if code >= 0 else 1000


cdef inline double acc_weight(int8_t role, int key) noexcept nogil:
    """1.0 when a trade of this role feeds the sum keyed by acc_role_key(code), else 0.0."""
    return <double>(role == key)


cdef inline double acc_value(const AccState* a, double total, int64_t ts_us) noexcept nogil:
    """A decayed sum read at ts_us (>= last update), in signal units."""
    cdef double f = 1.0
    if not a.has_data or a.mean_size <= 0.0:
        return 0.0
    if a.norm == 0:                 # a share of the total flow: the decay cancels
        return total / a.total_sum if a.total_sum > 0.0 else 0.0
    if ts_us > a.last_ts_us:
        f = exp(-a.decay_per_us * <double>(ts_us - a.last_ts_us))
    return (total * f) / (a.mean_size * a.scale)


cdef inline void acc_values(const AccState* a, int64_t ts_us, double* alpha, double* hazard) noexcept nogil:
    """Both signals read at ts_us (>= last update): acc_value twice with one exp."""
    cdef double f = 1.0, unit
    if not a.has_data or a.mean_size <= 0.0:
        alpha[0] = 0.0
        hazard[0] = 0.0
        return
    if a.norm == 0:                 # a share of the total flow: the decay cancels
        if a.total_sum > 0.0:
            alpha[0] = a.alpha_sum / a.total_sum
            hazard[0] = a.hazard_sum / a.total_sum
        else:
            alpha[0] = 0.0
            hazard[0] = 0.0
        return
    if ts_us > a.last_ts_us:
        f = exp(-a.decay_per_us * <double>(ts_us - a.last_ts_us))
    unit = a.mean_size * a.scale
    alpha[0] = (a.alpha_sum * f) / unit
    hazard[0] = (a.hazard_sum * f) / unit


cdef class SignalAccumulator:
    """Decayed alpha and hazard flow sums, O(1) time and memory per trade.

    Usable on its own (any trading stack) and identical to the accumulator inside the
    tape replay.  ``alpha`` is the decayed sum of ``s * amount`` (s = +1 buy taker, -1 sell
    taker) over trades whose role feeds alpha, ``hazard`` the decayed sum of ``amount``
    over trades whose role feeds hazard; both decay with half-life ``half_life_s`` and are
    read in units of ``signal_scale_trades`` exponentially weighted mean trade sizes (every
    trade with a known side updates the mean, with weight ``size_weight``) when
    ``signal_norm`` is ``"trades"``; with ``"flow"`` (the default) both are read as a share of
    the total flow of every signed trade, decayed alike (alpha in [-1, 1], hazard in [0, 1]).

    Parameters
    ----------
    half_life_s : float
        Half-life of the decay, seconds (> 0).
    size_weight : float
        Weight of each trade in the mean trade size, 0 < w <= 1.
    signal_scale_trades : float
        Signal unit, in mean trade sizes (> 0).
    alpha_role, hazard_role : int
        Role codes (``clusterlob.roles``) feeding each sum; -1 feeds nothing.
    signal_norm : {"flow", "trades"}
        Units of the signals (see above).

    Examples
    --------
    >>> acc = SignalAccumulator.from_config(StrategyConfig())      # doctest: +SKIP
    >>> acc.update(ts_us, side, amount, role); acc.alpha(now_us)   # doctest: +SKIP
    """

    cdef AccState state
    cdef readonly int alpha_role
    cdef readonly int hazard_role
    cdef readonly double half_life_s

    def __init__(self, double half_life_s=10.0, double size_weight=0.001,
                 double signal_scale_trades=50.0, int alpha_role=0, int hazard_role=1,
                 str signal_norm="flow"):
        if not (half_life_s > 0.0 and half_life_s < float("inf")):
            raise ParameterError(f"`half_life_s` must be a finite number > 0, got {half_life_s!r}")
        if not (0.0 < size_weight <= 1.0):
            raise ParameterError(f"`size_weight` must be in (0, 1], got {size_weight!r}")
        if not (signal_scale_trades > 0.0 and signal_scale_trades < float("inf")):
            raise ParameterError(f"`signal_scale_trades` must be a finite number > 0, got {signal_scale_trades!r}")
        for name, code in (("alpha_role", alpha_role), ("hazard_role", hazard_role)):
            if code < -1 or code > 127:
                raise ParameterError(f"`{name}` must be a role code (-1 for none), got {code}")
        if signal_norm not in SIGNAL_NORMS:
            raise ParameterError(f"`signal_norm` must be one of {list(SIGNAL_NORMS)}, got {signal_norm!r}")
        self.half_life_s = half_life_s
        self.alpha_role = alpha_role
        self.hazard_role = hazard_role
        acc_init(&self.state, log(2.0) / (half_life_s * 1e6), size_weight, signal_scale_trades,
                 SIGNAL_NORMS.index(signal_norm))

    @classmethod
    def from_config(cls, config):
        """An accumulator with a :class:`clusterlob.strategy.StrategyConfig`'s parameters."""
        return cls(config.half_life_s, config.size_weight, config.signal_scale_trades,
                   config.alpha_code, config.hazard_code, config.signal_norm)

    def _check_time(self, int64_t ts_us):
        if self.state.has_data and ts_us < self.state.last_ts_us:
            raise ParameterError(f"`ts_us` must not go backwards: {ts_us} < last update {self.state.last_ts_us}")

    def update(self, int64_t ts_us, int side, double amount, int role):
        """Add one trade (time in us, side +1/-1/0, amount > 0, role code).

        A trade of unknown side (0) is ignored.  Times must not decrease.
        """
        self._check_time(ts_us)
        if side == 0:
            return
        if not (amount > 0.0 and amount < float("inf")):
            raise ParameterError(f"`amount` must be a finite number > 0, got {amount!r}")
        acc_add(&self.state, ts_us, 1.0 if side > 0 else -1.0, amount,
                acc_weight(<int8_t>role, acc_role_key(self.alpha_role)),
                acc_weight(<int8_t>role, acc_role_key(self.hazard_role)))

    def update_many(self, const int64_t[::1] ts_us, const int8_t[::1] side,
                    const double[::1] amount, const int8_t[::1] role):
        """Add many trades in order (IN: equal-length arrays, times non-decreasing).

        The arrays are trusted (no per-element checks): validate them once beforehand.
        """
        cdef Py_ssize_t i, n = ts_us.shape[0]
        cdef int alpha_key = acc_role_key(self.alpha_role), hazard_key = acc_role_key(self.hazard_role)
        if side.shape[0] != n or amount.shape[0] != n or role.shape[0] != n:
            raise ParameterError(f"arrays must have equal lengths, got {n}, {side.shape[0]}, "
                                 f"{amount.shape[0]}, {role.shape[0]}")
        if n:
            self._check_time(ts_us[0])
        with nogil:
            for i in range(n):
                if side[i] != 0:
                    acc_add(&self.state, ts_us[i], 1.0 if side[i] > 0 else -1.0, amount[i],
                            acc_weight(role[i], alpha_key), acc_weight(role[i], hazard_key))

    def alpha(self, ts_us=None):
        """Alpha signal (signed) at ``ts_us`` (default: the last update's time)."""
        cdef int64_t t = self.state.last_ts_us if ts_us is None else ts_us
        self._check_time(t)
        return acc_value(&self.state, self.state.alpha_sum, t)

    def hazard(self, ts_us=None):
        """Hazard signal (>= 0) at ``ts_us`` (default: the last update's time)."""
        cdef int64_t t = self.state.last_ts_us if ts_us is None else ts_us
        self._check_time(t)
        return acc_value(&self.state, self.state.hazard_sum, t)

    @property
    def mean_size(self):
        """Exponentially weighted mean trade size (0 before the first trade)."""
        return self.state.mean_size

    @property
    def last_ts_us(self):
        """Time of the last update, or None before the first."""
        return self.state.last_ts_us if self.state.has_data else None

    def reset(self):
        """Forget every trade (parameters kept)."""
        acc_init(&self.state, self.state.decay_per_us, self.state.size_weight, self.state.scale,
                 self.state.norm)

    def __repr__(self):
        return (f"SignalAccumulator(half_life_s={self.half_life_s}, alpha_role={self.alpha_role}, "
                f"hazard_role={self.hazard_role}, last_ts_us={self.last_ts_us})")
