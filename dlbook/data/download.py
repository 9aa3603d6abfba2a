"""Downloading a dataset's files whole and checked, and checking a file already on disk against the published one:
a download cut short must never be trained on."""

import hashlib
import http.client
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from dlbook.errors import DlbookError
from dlbook.utils.entry import replaced_whole

log = logging.getLogger("dlbook")
USER_AGENT = "dlbook"


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(url: str, path: Path, md5: str | None) -> None:
    """`url` saved as `path`, whole or not at all: fetched under a temporary name beside it, refused when shorter
    than its Content-Length or, when there is one, without the published `md5` (a server that announces no length
    can still cut it short), and only then renamed to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_whole(path) as partial:
        # A user agent of its own: some dataset hosts refuse Python's default one.
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request) as response, open(partial, "wb") as file:
            announced = response.headers.get("Content-Length")
            try:
                shutil.copyfileobj(response, file)
            except http.client.IncompleteRead:  # the connection closed early: the check below names it
                pass
        got = partial.stat().st_size
        if announced is not None and got < int(announced):
            raise DlbookError(f"The download of {path} from {url} stopped early (got only {got} out of {announced} "
                              f"bytes), and nothing was kept. Run again to download it once more.")
        if md5 is not None and (found := md5_of(partial)) != md5:
            raise DlbookError(f"The download of {path} from {url} has MD5 {found}, not the published {md5}: it was "
                              f"cut short or the file changed at its source, and nothing was kept. Run again to "
                              f"download it once more, or put a copy with that MD5 there yourself.")


def download_archive(url: str, folder: Path, md5: str | None) -> None:
    """The tar or zip archive at `url` downloaded whole (see download_file) and extracted into `folder`. Both
    happen in a temporary folder inside `folder`, removed at the end with the archive, and the extracted entries
    are then renamed into place: a run checks the extracted files, so a failed download or extraction must leave
    none of them (nor an archive another tool would trust)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = url.rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=folder) as staging:
        archive, extracted = Path(staging) / name, Path(staging) / "extracted"
        download_file(url, archive, md5)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(extracted)  # zipfile drops absolute paths and '..' from member names
        elif tarfile.is_tarfile(archive):
            if not hasattr(tarfile, "data_filter"):  # the filter came in 3.10.12 and 3.11.4
                raise DlbookError(f"Extracting {name} safely needs Python 3.10.12, 3.11.4 or newer (tarfile's data "
                                  f"filter); this is {'.'.join(map(str, sys.version_info[:3]))}.")
            with tarfile.open(archive) as tarred:
                # keeps members inside: drops a leading '/', refuses '..' out of it, links out of it, devices
                tarred.extractall(extracted, filter="data")
        else:
            raise DlbookError(f"The download from {url} is no tar or zip archive (a proxy's page, or the address "
                              f"serves something else now), and nothing was kept.")
        move_into(extracted, folder)


def move_into(source: Path, target: Path) -> None:
    """Each entry of `source` renamed into `target`, a whole folder at once where `target` has none of its name
    (a rename is atomic, so a folder a run finds there is whole), merged into the one there otherwise."""
    for entry in source.iterdir():
        place = target / entry.name
        if entry.is_dir() and place.is_dir():
            move_into(entry, place)
        else:
            os.replace(entry, place)


def warn_unless_published(path: Path, md5: str) -> None:
    """Warn when a file found at a dataset's own place is not the published one (a download cut short by an older
    version or another tool). Only warned, since such a file may be the user's own text in that place; checked on
    every run, as hashing these files (6 MB at most) takes milliseconds."""
    if (found := md5_of(path)) != md5:
        log.warning(f"{path} is not the published file (MD5 {found}, not {md5}): a download cut short, or a file "
                    f"of your own. If it is not yours, delete it and run again to download it whole.")
