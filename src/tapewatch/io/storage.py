"""Where the lake's files live: a local folder, or any fsspec URL (`s3://`, `gs://`, `abfs://`, `memory://`).

A local folder (a plain path or `file://`) needs nothing beyond Polars and keeps the
lake's own mechanics: write a temporary file beside the target, then `os.replace` it.
Anything else with a scheme goes through fsspec, so one code path lists, reads and
writes every object store the same way. Credentials come from the environment as each
backend reads them (the AWS_* variables and ~/.aws for S3, `AWS_ENDPOINT_URL` for an
S3-compatible server, fsspec's config and FSSPEC_<PROTOCOL>_<OPTION> variables), never
from Tapewatch's settings, so they are never in its files or its messages.

An object store's single PUT is atomic (a reader sees the old object or the new one,
whole), so a file there is written once under its final key; filesystem-like remotes
(sftp, hdfs, ...) get a temporary name and a rename, as local folders do. Listings skip
fsspec's listing cache, so a long-running reader (the console) sees what another
process wrote since.

Keys are paths relative to the store's root with `/` separators, the same on every store.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from tapewatch.errors import InputError
from tapewatch.extras import require
from tapewatch.home import home_dir

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
"""At least two letters, so a Windows drive (`C:\\`) is a local path, not a scheme."""
_ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "memory"})
"""Object stores whose single PUT replaces an object whole: no temporary key needed."""
_S3 = frozenset({"s3", "s3a"})


class Store(Protocol):
    """What the lake needs of a place to keep files."""

    location: str
    """The root as given (a folder or a URL), for messages and `Lake.location`."""
    local_folder: Path
    """A local folder for what an object store cannot take (appended dead letters)."""

    def url(self, key: str) -> str: ...
    def glob(self, pattern: str) -> list[str]: ...
    def read_bytes(self, key: str) -> bytes | None: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def read_parquet(self, key: str, columns: list[str] | None = None) -> pl.DataFrame | None: ...
    def write_parquet(self, key: str, frame: pl.DataFrame) -> None: ...
    def scan_parquet(self, keys: list[str]) -> pl.LazyFrame: ...


def open_store(root: str | Path) -> Store:
    """The store at `root`: a local folder for a path or `file://`, else the fsspec filesystem of its scheme."""
    text = str(root)
    found = _SCHEME.match(text) if isinstance(root, str) else None
    if found is None or found.group(1).lower() == "file":
        return LocalStore(Path(text.removeprefix("file://")).expanduser())
    return RemoteStore(text.rstrip("/"), found.group(1).lower())


def read_parquet_url(url: str, columns: list[str] | None = None) -> pl.DataFrame:
    """One Parquet file at a path or URL (a lake partition's `url`): for workers given only a URL."""
    store = open_store(url.rsplit("/", 1)[0] if _SCHEME.match(url) else str(Path(url).parent))
    name = url.rsplit("/", 1)[1] if _SCHEME.match(url) else Path(url).name
    frame = store.read_parquet(name, columns)
    if frame is None:
        raise InputError(f"lake file {shown(url)}: not found")
    return frame


def shown(url: str) -> str:
    """`url` without any `user:password@`, for messages."""
    return re.sub(r"//[^/@]*@", "//***@", url)


class LocalStore:
    """A folder on this machine, read and written with Polars and the standard library only."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.location = str(folder)
        self.local_folder = folder

    def url(self, key: str) -> str:
        return str(self.folder / key)

    def glob(self, pattern: str) -> list[str]:
        if not self.folder.is_dir():
            return []
        return [path.relative_to(self.folder).as_posix() for path in self.folder.glob(pattern)]

    def read_bytes(self, key: str) -> bytes | None:
        path = self.folder / key
        return path.read_bytes() if path.is_file() else None

    def write_bytes(self, key: str, data: bytes) -> None:
        with self._replacing(key) as temporary:
            temporary.write_bytes(data)

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pl.DataFrame | None:
        path = self.folder / key
        return pl.read_parquet(path, columns=columns) if path.is_file() else None

    def write_parquet(self, key: str, frame: pl.DataFrame) -> None:
        with self._replacing(key) as temporary:
            frame.write_parquet(temporary)

    def scan_parquet(self, keys: list[str]) -> pl.LazyFrame:
        return pl.scan_parquet([self.folder / key for key in keys], hive_partitioning=False)

    @contextmanager
    def _replacing(self, key: str) -> Iterator[Path]:
        target = self.folder / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{uuid.uuid4().hex}.tmp")
        yield temporary
        os.replace(temporary, target)  # atomic: a reader sees the old file or the new one, never half


class RemoteStore:
    """A root URL on any fsspec filesystem; every failure there is one line naming the URL."""

    def __init__(self, location: str, scheme: str) -> None:
        self.location = location
        self.scheme = scheme
        self.fs, self.root = _filesystem(location, scheme)
        parts = [
            part for part in re.split(r"[/\\]+", location.split("://", 1)[1]) if part not in ("", ".", "..")
        ]
        self.local_folder = home_dir().joinpath("remote-lakes", scheme, *parts)

    def url(self, key: str) -> str:
        return f"{self.location}/{key}"

    def glob(self, pattern: str) -> list[str]:
        with self._errors():
            self.fs.invalidate_cache()
            found = self.fs.glob(f"{self.root}/{pattern}")
        prefix = f"{self.root}/"
        return [path.removeprefix(prefix) for path in found]

    def read_bytes(self, key: str) -> bytes | None:
        with self._errors():
            try:
                return bytes(self.fs.cat_file(f"{self.root}/{key}"))
            except FileNotFoundError:
                return None

    def write_bytes(self, key: str, data: bytes) -> None:
        target = f"{self.root}/{key}"
        with self._errors():
            if self.scheme in _ATOMIC_PUT:
                self.fs.pipe_file(target, data)
                return
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            temporary = f"{target.rsplit('/', 1)[0]}/.{uuid.uuid4().hex}.tmp"
            self.fs.pipe_file(temporary, data)
            self.fs.mv(temporary, target)

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pl.DataFrame | None:
        data = self.read_bytes(key)
        return None if data is None else pl.read_parquet(io.BytesIO(data), columns=columns)

    def write_parquet(self, key: str, frame: pl.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        self.write_bytes(key, buffer.getvalue())

    def scan_parquet(self, keys: list[str]) -> pl.LazyFrame:
        paths = [f"{self.root}/{key}" for key in keys]
        with self._errors():
            contents = self.fs.cat(paths, on_error="raise")  # concurrent on async stores (S3, GCS, Azure)
        frames = [pl.read_parquet(io.BytesIO(contents[path]), hive_partitioning=False) for path in paths]
        return pl.concat(frames).lazy()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except InputError:
            raise
        except Exception as error:  # the backend's own errors (botocore, aiohttp, OSError): one line
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if secret := re.search(r"//([^/@]*)@", self.location):
                reason = reason.replace(secret.group(1), "***")
            raise InputError(f"lake {shown(self.location)}: {reason}") from error


def _filesystem(location: str, scheme: str) -> tuple[Any, str]:
    """fsspec's filesystem for the URL and the root path on it, or one line saying what to install."""
    if scheme in _S3:
        require("s3", "fsspec", "s3fs", command=f"the lake {shown(location)}")
    elif importlib.util.find_spec("fsspec") is None:
        raise InputError(
            f"lake {shown(location)}: {scheme}:// URLs need fsspec and its {scheme} backend "
            "(gcsfs for gs://, adlfs for abfs://): pip install fsspec"
        )
    from fsspec.core import url_to_fs
    from fsspec.registry import known_implementations, registry

    if scheme not in known_implementations and scheme not in registry:
        raise InputError(
            f"lake {shown(location)}: unknown storage scheme '{scheme}://' "
            "(expected a folder or an fsspec URL such as s3://, gs://, abfs://, memory://)"
        )
    try:
        fs, root = url_to_fs(location)
    except Exception as error:  # gs:// without gcsfs (fsspec names the package), a backend's bad URL
        raise InputError(f"lake {shown(location)}: {error}") from error
    return fs, root.rstrip("/")
