"""Where a tape lives: a local folder, or any URI that ``pyarrow.fs`` opens, resolved in one place.

A *tape location* is a local path (``"tapes/btcusdt"``, a ``pathlib.Path``) or a URI that
:meth:`pyarrow.fs.FileSystem.from_uri` accepts (``file:///abs/tape``, ``s3://bucket/tape``,
``gs://bucket/tape``, ``hdfs://host/tape``, ``abfs://...``).  :func:`resolve_tape` turns it into a
:class:`TapeLocation`: the filesystem, the path inside it, and the text the user gave, which
every message names.  Every reader of the tape store (:mod:`.store`) and the feature cache's
fingerprint take their files through it, so a command given a URI reads exactly what it reads
from the plain path.

Only reading goes through here: tapes are written to local folders (:mod:`.writer`), and every
output (results, models, the feature cache) stays local.

A task sent to a worker carries the location's text (a string), never a filesystem object: the
worker resolves it again.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .._io import is_uri
from ..errors import TapeError

__all__ = ["TapeLocation", "TapeSource", "local_tape_path", "resolve_tape"]


@dataclass(frozen=True)
class TapeLocation:
    """A resolved tape location.

    Attributes
    ----------
    filesystem : pyarrow.fs.FileSystem
        Where the files are (a ``LocalFileSystem`` for a local path or a ``file://`` URI).
    path : str
        The tape folder inside ``filesystem``.
    text : str
        The location as given (a path or a URI): what messages name, and what a task carries.
    uri : bool
        Given as a URI (``text`` has a scheme), not as a plain path.
    """

    filesystem: pafs.FileSystem
    path: str
    text: str
    uri: bool

    @property
    def local(self) -> bool:
        """The files are on this machine (a plain path or a ``file://`` URI)."""
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    @property
    def local_path(self) -> str | None:
        """The folder on this machine, or None for a remote location."""
        return self.path if self.local else None

    def file(self, *parts: str) -> str:
        """Path of a file of the tape, inside :attr:`filesystem`."""
        if self.local and not self.uri:
            return str(Path(self.path, *parts))
        return "/".join([self.path.rstrip("/"), *parts]) if parts else self.path

    def where(self, *parts: str) -> str:
        """A file of the tape as messages name it (for a plain path, exactly ``Path(path) / ...``)."""
        if not self.uri:
            return str(Path(self.text, *parts))
        if not parts:
            return self.text
        base, mark, query = self.text.partition("?")          # s3://b/tape?region=x: parts before the query
        return "/".join([base.rstrip("/"), *parts]) + mark + query

    def info(self, *parts: str) -> pafs.FileInfo:
        """The file's (or the folder's) info; an unreachable filesystem is a one-line error."""
        try:
            return self.filesystem.get_file_info(self.file(*parts))
        except (OSError, pa.ArrowException) as exc:
            what = f"cannot reach {self.where(*parts)}" if parts else "cannot reach it"
            raise TapeError(f"tape {self.text}: {what} ({_first_line(exc)})") from None

    def is_file(self, *parts: str) -> bool:
        return self.info(*parts).type == pafs.FileType.File

    def is_dir(self, *parts: str) -> bool:
        return self.info(*parts).type == pafs.FileType.Directory

    def read_bytes(self, *parts: str) -> bytes:
        """The whole file (small files: the manifest).  A local path is read as it always was
        (an OSError names the file); a remote file that cannot be read is a one-line error."""
        if self.local and not self.uri:
            return Path(self.file(*parts)).read_bytes()
        try:
            with self.filesystem.open_input_stream(self.file(*parts)) as stream:
                return stream.read()
        except (OSError, pa.ArrowException) as exc:
            raise TapeError(f"{self.where(*parts)}: cannot read ({_first_line(exc)})") from None

    def parquet(self, *parts: str) -> pq.ParquetFile:
        """A Parquet file of the tape, opened (its footer read)."""
        return pq.ParquetFile(self.file(*parts), filesystem=self.filesystem)

    def task_text(self) -> str:
        """The location as a task sent to a worker carries it (text, resolved again there).  A
        location inside a filesystem object given from Python cannot travel: a one-line error
        asking for a path or URI."""
        if not self.uri and not self.local:
            raise TapeError(f"tape {self.text} is inside a `filesystem` object, which tasks do not carry: "
                            f"give a local path or a URI (file://, s3://, gs://, hdfs://, ...)")
        return self.text

    def identity(self) -> str:
        """What tells this tape apart from any other in a cache key: '' for a local folder (its
        files' sizes and modification times already do; caches built before URIs existed keep
        their keys), the filesystem type and the location text otherwise."""
        return "" if self.local else f"{self.filesystem.type_name}:{self.text}"


#: What the tape readers accept: a path, a URI, or a location already resolved.
TapeSource = Union[str, "os.PathLike[str]", TapeLocation]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _from_uri(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's resolution of a URI (the tests put an in-memory filesystem behind ``mock://``)."""
    return pafs.FileSystem.from_uri(uri)


def resolve_tape(location: TapeSource, filesystem: pafs.FileSystem | None = None) -> TapeLocation:
    """The filesystem and path of a tape location.

    Parameters
    ----------
    location : str, Path or TapeLocation
        A local path, or a URI :meth:`pyarrow.fs.FileSystem.from_uri` accepts (``file://``,
        ``s3://``, ``gs://``, ``hdfs://``, ...).  A :class:`TapeLocation` is returned as it is.
    filesystem : pyarrow.fs.FileSystem, optional
        Read ``location`` (then a path, not a URI) inside this filesystem instead: any pyarrow
        filesystem, e.g. a ``SubTreeFileSystem`` or a ``PyFileSystem`` with your own handler.

    Returns
    -------
    TapeLocation

    Raises
    ------
    TapeError
        An unknown URI scheme, or a filesystem that cannot be opened (no credentials, no
        network, no Java for HDFS): one line naming the location.
    """
    if isinstance(location, TapeLocation):
        if filesystem is not None:
            raise TapeError(f"`filesystem` is given twice: with the tape location {location.text} and "
                            f"as the argument")
        return location
    if not isinstance(location, (str, os.PathLike)):
        raise TapeError(f"a tape location must be a path or a URI, got {type(location).__name__}")
    text = os.fspath(location)
    if not isinstance(text, str):
        raise TapeError(f"a tape location must be a path or a URI, got {text!r}")
    if filesystem is not None:
        if not isinstance(filesystem, pafs.FileSystem):
            raise TapeError(f"`filesystem` must be a pyarrow.fs.FileSystem, got {type(filesystem).__name__}")
        if is_uri(text):
            raise TapeError(f"tape {text}: give a path inside `filesystem`, not a URI")
        return TapeLocation(filesystem, text, text, False)
    if not is_uri(text):
        return TapeLocation(pafs.LocalFileSystem(), text, text, False)
    scheme = text.split("://", 1)[0].lower()
    try:
        fs, path = _from_uri(text)
    except (OSError, pa.ArrowException, ValueError) as exc:
        message = _first_line(exc)
        if "Unrecognized filesystem type" in message:
            raise TapeError(f"tape {text}: unknown URI scheme `{scheme}` (pyarrow.fs opens file://, s3://, "
                            f"gs://, hdfs://, abfs://; or give a local path)") from None
        raise TapeError(f"tape {text}: cannot open its {scheme} filesystem ({message})") from None
    return TapeLocation(fs, path, text, True)


def local_tape_path(location: TapeSource) -> str | None:
    """The local folder of a tape location (a plain path, or the path of a ``file://`` URI), or
    None for a remote one; for the commands' check that an output folder is not inside an input."""
    return resolve_tape(location).local_path
