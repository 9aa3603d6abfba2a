"""Derived data (token ids, vocabularies) computed once from source files and kept in paths.cache_dir, never beside
the data, whose folder may be read-only (a cluster's shared datasets)."""

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from dlbook.utils.entry import replaced_whole

log = logging.getLogger("dlbook")


def cache_key(files: Iterable[Path], **settings) -> str:
    """A digest of the files' names, sizes, modification times, inodes and change times and of the settings that
    shape the result: a changed file or setting makes a new entry. The inode and change time (which no tool can set)
    catch a same-size edit whose modification time was kept (cp -p, rsync -a, tar x) without reading the files."""
    identity = [[str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]
                for path in sorted(files) for stat in [path.stat()]]
    text = json.dumps({"files": identity, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """paths.cache_dir's default, for datamodules built outside a run config."""
    return Path(os.environ.get("DLBOOK_CACHE_DIR") or Path.home() / ".cache" / "dlbook")


def cached(cache_dir: str | Path | None, name: str, key: str, build: Callable[[], dict]) -> dict:
    """build()'s dict (tensors, lists, numbers), read from <cache_dir>/<name>-<key>.pt when an earlier run wrote
    it (cache_dir None: the default one); otherwise built and written there, atomically (a concurrent run never
    reads half a file, and a write cut short leaves no partial file). A damaged file is rebuilt with a warning. An
    unwritable cache folder only costs the rebuild next time."""
    path = Path(cache_dir or default_cache_dir()).expanduser() / f"{name}-{key}.pt"
    if path.is_file():
        try:
            return load_checked(path)
        except Exception as error:  # truncated, damaged or from an incompatible version: rebuild it
            log.warning(f"Rebuilding the unreadable cache file {path} ({type(error).__name__}: {error}).")
    result = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_whole(path) as partial:
            torch.save(result, partial)
    except OSError as error:
        log.warning(f"Could not write the cache file {path} ({error}); it is rebuilt on every run.")
    return result


def load_checked(path: Path) -> dict:
    """torch.load of a file whose zip records' CRCs were checked first: torch.load checks none, so overwritten
    bytes would be read as wrong token ids. The check reads the file once more (9 MB of PTB ids: about 5 ms)."""
    with zipfile.ZipFile(path) as archive:
        damaged = archive.testzip()
    if damaged is not None:
        raise ValueError(f"its record {damaged} fails its CRC check: the file was damaged after it was written")
    return torch.load(path, weights_only=True)
