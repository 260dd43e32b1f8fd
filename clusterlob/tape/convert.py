"""Convert outside market data into a tape directory: ``python -m clusterlob.convert``.

::

    python -m clusterlob.convert INPUT... --out TAPE_DIR [--symbol S] [--tick-size X]
        [--lot-size X] [--contract-size X] [--inverse | --no-inverse]
        [--price-increment X] [--amount-increment X] [--strict] [--force] [--json]

An INPUT is a file, a folder (its files) or a glob pattern.  Every input's format is detected
from its content; trades, book and funding inputs combine into one tape (one instrument).
Files of one format form one stream, read in order of their first receive time, with the
book carried over file boundaries (:mod:`clusterlob.tape.readers.streams`).  The tape is
written into a temporary folder beside TAPE_DIR and renamed into place when complete; a
non-empty TAPE_DIR is refused unless ``--force``.
The tick and lot sizes are inferred from the prices and amounts when not given (the manifest
says which).  The summary lists rows per day and every dropped or flagged count.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .._typing import PathLike
from ..errors import ParameterError, TapeError
from .readers import ReaderOptions, detect_reader
from .readers.base import READ_ERRORS, IncrementGuess
from .readers.streams import expand_inputs, open_readers, plan_streams, produces
from .types import Book, Funding, Instrument
from .writer import TapeWriter
from .validate import ValidationReport

__all__ = ["ConvertResult", "convert", "is_inverse"]

_COIN_M = re.compile(r"^[A-Z0-9]+USD_(PERP|\d{6})$")


def is_inverse(exchange: str, symbol: str) -> bool:
    """Whether an instrument is an inverse contract by its venue and symbol: Binance COIN-M
    (``binance-delivery``, symbols such as ``BTCUSD_PERP`` or ``BTCUSD_240628``)."""
    return exchange == "binance-delivery" or bool(_COIN_M.match(symbol.upper()))


@dataclass
class ConvertResult:
    """What a conversion wrote: the manifest and the validation report."""

    path: Path
    manifest: dict
    report: ValidationReport

    def to_dict(self) -> dict:
        return {"path": str(self.path), "manifest": self.manifest, "validation": self.report.to_dict()}

    def lines(self) -> list[str]:
        inst = self.manifest["instrument"]
        src = self.manifest["summary"].get("increments", {})
        contract = ""
        if inst.get("inverse") or inst.get("contract_size") is not None:
            contract = (f", {'inverse' if inst.get('inverse') else 'linear'} contract of "
                        f"{inst.get('contract_size'):g}")
        out = [f"wrote {self.path}: {inst['exchange']}:{inst['symbol']}, tick {inst['tick_size']:g} "
               f"({src.get('tick_size', 'given')}), lot {inst['lot_size']:g} ({src.get('lot_size', 'given')}), "
               f"{self.manifest['book_levels'] or 0} book levels{contract}",
               f"{'day':<12}{'trades':>12}{'book':>12}"]
        for d in self.manifest["days"]:
            out.append(f"{d['date']:<12}{d['trades']:>12,}{d['book']:>12,}")
        tot = self.manifest["totals"]
        out.append(f"{'total':<12}{tot['trades']:>12,}{tot['book']:>12,}")
        if self.manifest.get("funding"):
            out.append(f"funding table: {self.manifest['funding']['total']:,} rows over "
                       f"{len(self.manifest['funding']['days'])} days")
        for f in self.report.files:
            out.extend(f.lines())
        s = self.manifest["summary"]
        out.append(f"out-of-order rows stably sorted: {s['out_of_order_trades_sorted']:,} trades, "
                   f"{s['out_of_order_book_sorted']:,} book; duplicate trade ids (kept): {s['duplicate_trade_ids']:,}")
        return out


def _read(reader, path: Path):
    """The reader's batches; a failure below its own checks (pyarrow, gzip, the OS, bytes that
    are not UTF-8) is one line naming the file."""
    try:
        yield from reader.batches()
    except READ_ERRORS as exc:
        text = str(exc).strip()
        first = text.splitlines()[0][:200] if text else type(exc).__name__
        raise TapeError(f"input {path}: cannot read ({first})") from None


def convert(inputs: Sequence, out: PathLike, *, symbol: str | None = None, exchange: str | None = None,
            tick_size: float | None = None, lot_size: float | None = None,
            contract_size: float | None = None, inverse: bool | None = None,
            price_increment: float | None = None, amount_increment: float | None = None,
            strict: bool = False, skip_bad: bool = False, keep_non_market: bool = False,
            force: bool = False, progress: Callable[[str], object] | None = None) -> ConvertResult:
    """Read every input, validate, and write one tape directory at ``out`` (atomically).

    Parameters
    ----------
    inputs : sequence of paths
        Trades, book and funding files in any supported format (see :mod:`clusterlob.tape.readers`);
        a folder stands for its files, a glob pattern for the files it matches.
    out : path
        Target tape directory.
    symbol : pick one symbol from inputs that hold several.
    exchange : override the exchange name (needed when no input names it).
    tick_size, lot_size : instrument increments; inferred from the data when None.
    contract_size : value of one contract (inverse: quote currency per contract).
    inverse : amounts are inverse contracts; None: inferred (Binance COIN-M symbols and the
        ``binance-delivery`` exchange are inverse).  An inverse instrument needs a contract size.
    price_increment, amount_increment : value of one integer unit in pointline inputs.
    strict : any dropped row is an error instead of a count.
    force : replace ``out`` when it is a clusterlob tape (never a folder clusterlob did not write).
    progress : called with a short line after each input (the CLI prints it to stderr).
    """
    if not inputs:
        raise TapeError("no input files given")
    for name, value in (("tick_size", tick_size), ("lot_size", lot_size), ("contract_size", contract_size)):
        if value is not None and not value > 0:
            raise TapeError(f"`{name}` must be > 0, got {value!r}")
    if inverse and contract_size is None:
        raise ParameterError("an inverse instrument needs `contract_size` (--contract-size, the quote-currency "
                             "value of one contract, e.g. 100 for BTCUSD_PERP)")
    options = ReaderOptions(symbol=symbol, price_increment=price_increment,
                            amount_increment=amount_increment, skip_bad=skip_bad,
                            keep_non_market=keep_non_market, strict=strict)
    report = ValidationReport(strict=strict)
    tick_guess, lot_guess = IncrementGuess(), IncrementGuess()
    names: dict = {"exchange": set(), "symbol": set()}
    paths = expand_inputs(inputs)
    readers = [(p, detect_reader(p)) for p in paths]
    streams = plan_streams(readers, symbol)
    placeholder = Instrument(exchange or "?", symbol or "?", 1.0, 1.0)
    n_files, done, started_all = len(readers), 0, time.perf_counter()
    with TapeWriter(out, placeholder, force=force, inputs=inputs, progress=progress) as writer:
        for stream in streams:
            if progress and len(stream.paths) > 1:
                progress(f"{stream.name}: {len(stream.paths)} files read as one stream, "
                         f"{stream.paths[0].name} .. {stream.paths[-1].name}")
            for path, reader in open_readers(stream, options, report):
                started = time.perf_counter()
                rep = report.files[-1]
                for batch in _read(reader, path):
                    if isinstance(batch, Funding):
                        writer.add_funding(batch)
                    elif isinstance(batch, Book):
                        writer.add_book(batch)
                        if tick_size is None:
                            tick_guess.update(batch.bid_px.ravel())
                            tick_guess.update(batch.ask_px.ravel())
                        if lot_size is None:
                            lot_guess.update(batch.bid_sz.ravel())
                            lot_guess.update(batch.ask_sz.ravel())
                    else:
                        writer.add_trades(batch)
                        if tick_size is None:
                            tick_guess.update(batch.price)
                        if lot_size is None:
                            lot_guess.update(batch.amount)
                for key in names:
                    value = getattr(reader, key)
                    if value is not None:
                        names[key].add(value)
                done += 1
                if progress:
                    secs = time.perf_counter() - started
                    eta = ((time.perf_counter() - started_all) / done * (n_files - done)) if done < n_files else 0
                    progress(f"[{done}/{n_files}] {path.name} ({rep.format}): {rep.rows_read:,} rows in {secs:.1f}s "
                             f"({rep.rows_read / max(secs, 1e-9):,.0f} rows/s)"
                             + (f", ETA {eta:.0f}s" if eta else ""))
        for key in names:
            if len(names[key]) > 1:
                raise TapeError(f"inputs disagree on the {key}: {', '.join(sorted(names[key]))}; "
                                f"convert each into its own tape" + (" or pick one with --symbol" if key == "symbol" else ""))
        increments = {}
        if tick_size is None:
            tick_size = tick_guess.value
            increments["tick_size"] = (f"inferred from {tick_guess.count:,} distinct prices"
                                       + ("" if tick_guess.reliable else ": too few, a lower bound; pass --tick-size"))
        if lot_size is None:
            lot_size = lot_guess.value
            increments["lot_size"] = (f"inferred from {lot_guess.count:,} distinct amounts"
                                      + ("" if lot_guess.reliable else ": too few, a lower bound; pass --lot-size"))
        if tick_size is None or lot_size is None:
            other = sum(n for reason, n in report.total("dropped").items() if reason.startswith("other symbols"))
            if options.symbol and other:
                raise ParameterError(f"`--symbol` {options.symbol} matches no row of the inputs "
                                     f"({other:,} rows of other symbols dropped)")
            if all(produces(st.cls) == {"funding"} for st in streams):
                raise TapeError("the inputs hold only funding rows (derivative_ticker); convert them together "
                                "with the instrument's trades or book files")
            read = "; ".join(f"{Path(f.path).name}: {f.rows_read:,} rows read"
                             + (f", {sum(f.flagged.values()):,} flagged" if f.flagged else "")
                             + (f", {sum(f.dropped.values()):,} dropped" if f.dropped else "")
                             for f in report.files)
            raise TapeError(f"no valid prices or amounts in the inputs ({read}): nothing to convert")
        name_exchange = exchange or next(iter(names["exchange"]), "unknown")
        name_symbol = next(iter(names["symbol"]), symbol or "unknown")
        if inverse is None:
            inverse = is_inverse(name_exchange, name_symbol)
        writer.instrument = Instrument(name_exchange, name_symbol, float(tick_size), float(lot_size),
                                       None if contract_size is None else float(contract_size), bool(inverse))
        manifest = writer.close({"validation": report.to_dict(), "increments": increments,
                                 "inputs": [str(p) for p, _ in readers],
                                 "streams": [{"format": st.name, "files": [str(p) for p in st.paths]}
                                             for st in streams]})
    return ConvertResult(Path(out), manifest, report)
