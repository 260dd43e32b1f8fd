"""Plain-Python twin of the Binance order book kernel (``_kernels/binance.pxi``,
``BinanceL2Book``): a dict per side.  The line scanner's twin is the reader's own json path
(``tests/test_binance_reader.py`` compares the two)."""
import numpy as np


class DictBook:
    """The specification: a dict per side, sorted when asked."""

    def __init__(self):
        self.sides = [{}, {}]

    def apply(self, bids, asks, reset=False):
        if reset:
            self.sides = [{}, {}]
        for side, levels in zip(self.sides, (bids, asks)):
            for price, qty in levels:
                if float(qty) == 0:
                    side.pop(float(price), None)
                else:
                    side[float(price)] = float(qty)

    def top(self, levels=25):
        out = np.full((4, levels), np.nan)
        for k, (side, reverse) in enumerate(((self.sides[0], True), (self.sides[1], False))):
            prices = sorted(side, reverse=reverse)[:levels]
            out[2 * k, :len(prices)] = prices
            out[2 * k + 1, :len(prices)] = [side[p] for p in prices]
        return out
