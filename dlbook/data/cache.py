"""Derived data (token ids, vocabularies) computed once from source files and kept in paths.cache_dir, never beside
the data, whose folder may be read-only (a cluster's shared datasets)."""

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from dlbook.utils.entry import replaced_whole

log = logging.getLogger("dlbook")


def cache_key(files: Iterable[Path], **settings) -> str:
    """A digest of the files' names, sizes and modification times and of the settings that shape the result: a
    changed file or setting makes a new entry."""
    identity = [[str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns] for path in sorted(files)]
    text = json.dumps({"files": identity, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """paths.cache_dir's default, for datamodules built outside a run config."""
    return Path(os.environ.get("DLBOOK_CACHE_DIR") or Path.home() / ".cache" / "dlbook")


def cached(cache_dir: str | Path | None, name: str, key: str, build: Callable[[], dict]) -> dict:
    """build()'s dict (tensors, lists, numbers), read from <cache_dir>/<name>-<key>.pt when an earlier run wrote
    it (cache_dir None: the default one); otherwise built and written there, atomically (a concurrent run never
    reads half a file, and a write cut short leaves no partial file). An unwritable cache folder only costs the
    rebuild next time."""
    path = Path(cache_dir or default_cache_dir()).expanduser() / f"{name}-{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception as error:  # truncated or from an incompatible version: rebuild it
            log.warning(f"Rebuilding the unreadable cache file {path} ({type(error).__name__}: {error}).")
    result = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_whole(path) as partial:
            torch.save(result, partial)
    except OSError as error:
        log.warning(f"Could not write the cache file {path} ({error}); it is rebuilt on every run.")
    return result
