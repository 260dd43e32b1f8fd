from __future__ import annotations
from ..errors import ClusterlobError
from .._cli import OneLineParser
from .._io import Progress
from .._cli import error_exit
import argparse
import json
import sys
from ..tape.convert import convert

def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m clusterlob.convert",
                                     description="Convert trades, book data and funding into a clusterlob tape directory.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="files, folders or glob patterns: Tardis CSV/CSV.gz (trades, book_snapshot, "
                             "incremental_book_L2, quotes, book_ticker, derivative_ticker), Binance historical "
                             "depth CSV, flat or pointline Parquet, Binance stream recordings (.gz or text); "
                             "many files of one format are read as one stream in time order")
    parser.add_argument("--out", required=True, metavar="TAPE_DIR")
    parser.add_argument("--symbol", help="keep only this symbol (needed when a file holds several)")
    parser.add_argument("--exchange", help="exchange name, when the inputs do not say it")
    parser.add_argument("--tick-size", type=float, help="price increment (inferred when omitted)")
    parser.add_argument("--lot-size", type=float, help="amount increment (inferred when omitted)")
    parser.add_argument("--contract-size", type=float,
                        help="value of one contract (inverse: quote currency per contract, e.g. 100 for BTCUSD_PERP)")
    parser.add_argument("--inverse", action=argparse.BooleanOptionalAction, default=None,
                        help="amounts are inverse contracts (default: inferred; Binance COIN-M is inverse)")
    parser.add_argument("--price-increment", type=float, help="pointline: price of one integer unit")
    parser.add_argument("--amount-increment", type=float, help="pointline: amount of one integer unit")
    parser.add_argument("--skip-bad", action="store_true", help="count and skip malformed lines (line formats)")
    parser.add_argument("--keep-non-market", action="store_true", help="keep non-market trades (counted either way)")
    parser.add_argument("--strict", action="store_true", help="fail on any row that would be dropped")
    parser.add_argument("--force", action="store_true",
                        help="replace TAPE_DIR when it is a clusterlob tape (never a folder clusterlob did not write)")
    parser.add_argument("--json", action="store_true", help="print the manifest and validation report as JSON")
    parser.add_argument("--quiet", action="store_true", help="print no progress on stderr")
    args = parser.parse_args(argv)
    steps = Progress("convert", total=len(args.inputs), unit="file", quiet=args.quiet)
    try:
        result = convert(args.inputs, args.out, symbol=args.symbol, exchange=args.exchange,
                         tick_size=args.tick_size, lot_size=args.lot_size,
                         contract_size=args.contract_size, inverse=args.inverse,
                         price_increment=args.price_increment, amount_increment=args.amount_increment,
                         strict=args.strict, skip_bad=args.skip_bad, keep_non_market=args.keep_non_market,
                         force=args.force, progress=lambda line: steps.step(note=line))
    except (ClusterlobError, OSError) as exc:   # user errors: one line, exit 2
        return error_exit(exc)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print("\n".join(result.lines()))
    return 0




if __name__ == "__main__":
    sys.exit(main())
