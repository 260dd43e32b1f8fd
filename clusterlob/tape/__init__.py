"""Stage 1, the tape: trades and book snapshots of one instrument, validated and stored as
day-partitioned Parquet.

* :mod:`.store` - :class:`Tape`, :class:`Trades`, :class:`Book`, :class:`Instrument`; reading a
  tape directory (:func:`read_tape`, :func:`iter_days`, :func:`read_funding`) and its manifest;
* :mod:`.location` - :func:`resolve_tape`: a local folder or any URI ``pyarrow.fs`` opens
  (``file://``, ``s3://``, ``gs://``, ``hdfs://``), the one place a tape location is resolved;
* :mod:`.writer` - :class:`TapeWriter`, :func:`write_tape` (atomic, any day order);
* :mod:`.validate` - the validation rules every reader applies, with counted drops;
* :mod:`.readers` - Tardis (trades, book snapshots, incremental_book_L2, quotes, derivative_ticker),
  flat and pointline Parquet, Binance recordings and historical depth files; format detection;
  many files as one stream;
* :mod:`.convert` - :func:`convert` (``python -m clusterlob.convert``);
* :mod:`.synth` - :func:`generate_tape` (``python -m clusterlob.synth``);
* :mod:`.calibrate` - tapes drawn from the marginals of a real one (``--calibrate-from``).

See ``docs/tape.md``.
"""
from .location import TapeLocation, resolve_tape
from .store import iter_days, read_funding, read_manifest, read_tape
from .types import FORMAT_NAME, FORMAT_VERSION, MAX_LEVELS, US_PER_DAY, Book, Funding, Instrument, Tape, Trades, day_of_us, day_start_us, parse_days
from .writer import TapeWriter, write_tape

__all__ = ["Book", "Funding", "FORMAT_NAME", "FORMAT_VERSION", "Instrument", "MAX_LEVELS", "Tape", "TapeLocation", "TapeWriter",
           "Trades", "US_PER_DAY", "day_of_us", "day_start_us", "iter_days", "parse_days", "read_funding",
           "read_manifest", "read_tape", "resolve_tape", "write_tape"]
