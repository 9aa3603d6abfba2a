"""Downloading a dataset's files whole and checked, and checking a file already on disk against the published one:
a download cut short must never be trained on."""

import hashlib
import logging
import urllib.error
import urllib.request
from pathlib import Path

from dlbook.errors import DlbookError
from dlbook.utils.entry import replaced_whole

log = logging.getLogger("dlbook")


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(url: str, path: Path, md5: str | None) -> None:
    """`url` saved as `path`, whole or not at all: fetched under a temporary name beside it (urlretrieve refuses a
    body shorter than its Content-Length), checked against the published `md5` when there is one (a server that
    announces no length can still cut it short), and only then renamed to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_whole(path) as partial:
        try:
            urllib.request.urlretrieve(url, partial)
        except urllib.error.ContentTooShortError as error:
            raise DlbookError(f"The download of {path} from {url} stopped early ({error.reason}), and nothing was "
                              f"kept. Run again to download it once more.") from None
        if md5 is not None and (found := md5_of(partial)) != md5:
            raise DlbookError(f"The download of {path} from {url} has MD5 {found}, not the published {md5}: it was "
                              f"cut short or the file changed at its source, and nothing was kept. Run again to "
                              f"download it once more, or put a copy with that MD5 there yourself.")


def warn_unless_published(path: Path, md5: str) -> None:
    """Warn when a file found at a dataset's own place is not the published one (a download cut short by an older
    version or another tool). Only warned, since such a file may be the user's own text in that place; checked on
    every run, as hashing these files (6 MB at most) takes milliseconds."""
    if (found := md5_of(path)) != md5:
        log.warning(f"{path} is not the published file (MD5 {found}, not {md5}): a download cut short, or a file "
                    f"of your own. If it is not yours, delete it and run again to download it whole.")
