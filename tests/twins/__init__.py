"""Plain twins of clusterlob's compiled kernels: the specification the tests compare them with.

One module per stage, named after it, each a few obvious loops or whole-array NumPy lines,
slow on purpose (test-only; nothing here is imported by the package):

* :mod:`twins.features` - raw trade features and rolling z-scores (``_kernels/features.pxi``,
  ``rolling.pxi``), whole-array;
* :mod:`twins.online` - the online engine's features, z-scores and labels, event by event
  (``_kernels/online.pxi``), written independently of the batch twins;
* :mod:`twins.kmeans` - K-Means++ seeding, the Lloyd pass and loop (``kmeans.pxi``);
* :mod:`twins.importance` - per-cluster moments and the two-pass sums of squares (``importance.pxi``);
* :mod:`twins.signals` - bucketed OFI and mid closes (``signals.pxi``);
* :mod:`twins.binance` - the order book as a dict per side (``binance.pxi``; the line
  scanner's twin is the reader's json path);
* :mod:`twins.tape` - the sortedness count (``tape.pxi``);
* :mod:`twins.replay` - the tape replay's simulated exchange and quoting rules
  (``replay.pxi``, shared by the simulated gateway ``online_gateway.pxi``) and the signal
  accumulator (``accumulator.pxi``); benchmarks load it by path (``tools/bench_replay.py``).
"""
