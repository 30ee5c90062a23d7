"""Fetching the four MNIST IDX files on first use: public mirrors tried in order, each file
checked against its published MD5 before it is used, written atomically, reused offline."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from data.errors import DataError

# The MD5 sums published with the files (torchvision's MNIST resources list the same).
CHECKSUMS: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)
MIRRORS_VARIABLE = "DIGIT_PAIRS_MNIST_MIRRORS"  # space-separated base URLs replacing MIRRORS
CACHE_VARIABLE = "DIGIT_PAIRS_DATA"  # the cache folder, instead of the one below
TIMEOUT_S = 30.0
CHUNK = 1 << 16


def cache_dir() -> Path:
    """Where `--dataset mnist` keeps the files when no --data-dir is given."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "digit-pair-search" / "mnist"


def mirrors() -> tuple[str, ...]:
    """The mirrors to try: $DIGIT_PAIRS_MNIST_MIRRORS when set (a local copy), else MIRRORS."""
    given = os.environ.get(MIRRORS_VARIABLE, "").split()
    return tuple(given) or MIRRORS


class Refused(Exception):
    """One mirror could not give one file (unreachable, cut short, or the wrong bytes)."""


def download(url: str, target: Path, md5: str, timeout: float) -> None:
    """`url` into `target` through a temporary file beside it, renamed only once its MD5 is
    right: a cut or wrong download leaves nothing behind, a finished one is never partial."""
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            size = 0
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            if expected is not None and size != int(expected):
                raise Refused(f"{url}: cut short at {size} of {expected} bytes")
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5:
            raise Refused(f"{url} has MD5 {digest.hexdigest()}, not the published {md5}")
        os.replace(temp, target)
    except urllib.error.HTTPError as e:
        raise Refused(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        raise Refused(f"{url}: {getattr(e, 'reason', None) or e}") from None
    finally:
        Path(temp).unlink(missing_ok=True)


def fetch(
    folder: Path,
    names: Sequence[str],
    *,
    sources: Sequence[str] | None = None,
    checksums: Mapping[str, str] = CHECKSUMS,
    timeout: float = TIMEOUT_S,
    say: Callable[[str], None] = print,
) -> None:
    """Download each of `names` into `folder` from the first of `sources` that gives the
    published bytes. Raises DataError (one line) naming every file and the folder when a
    file cannot be had; files fetched before that are kept (they are complete and checked)."""
    sources = mirrors() if sources is None else sources
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # the leaf first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the MNIST folder {folder}: {e.strerror}") from None
    for name in names:
        reasons = []
        for base in sources:
            url = base.rstrip("/") + "/" + name
            say(f"fetching {url}")
            try:
                download(url, folder / name, checksums[name], timeout)
                break
            except Refused as e:
                reasons.append(str(e))
        else:
            for made in created:  # leave no empty folder of ours behind
                with contextlib.suppress(OSError):
                    made.rmdir()
            raise DataError(
                f"cannot fetch {name} ({'; '.join(reasons) or 'no mirror given'}); offline, put "
                f"{', '.join(CHECKSUMS)} in {folder} (or pass --data-dir)"
            )
