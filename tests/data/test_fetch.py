"""The MNIST fetcher against real HTTP servers on 127.0.0.1: good, cut-short and wrong mirrors."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from data import DataError, load_source
from data.fetch import CHECKSUMS, MIRRORS_VARIABLE, fetch
from tests.helpers import write_mnist

NAMES = list(CHECKSUMS)


class Mirror:
    """A local HTTP server giving the files of `folder` in one of three ways."""

    def __init__(self, folder: Path, mode: str) -> None:
        files = {p.name: p.read_bytes() for p in folder.iterdir()}
        self.requests: list[str] = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                mirror.requests.append(name)
                if name not in files:
                    self.send_error(404)
                    return
                body = files[name]
                if mode == "wrong":  # the right length, other bytes
                    body = bytes(b ^ 0x55 for b in body)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "drop":  # half of the file, then the connection closes
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mnist/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Generated MNIST files (gzip, the real names) and their MD5s, as a mirror publishes them."""
    folder = tmp_path / "published"
    write_mnist(folder, gz=True)
    return folder, {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture
def mirrors(published: tuple[Path, dict[str, str]]) -> Iterator[dict[str, Mirror]]:
    servers = {mode: Mirror(published[0], mode) for mode in ("good", "drop", "wrong")}
    yield servers
    for server in servers.values():
        server.close()


def test_fetches_from_the_first_mirror_that_gives_the_right_bytes(
    tmp_path: Path, published: tuple[Path, dict[str, str]], mirrors: dict[str, Mirror]
) -> None:
    folder, sums = published
    target = tmp_path / "cache" / "mnist"
    order = [mirrors["drop"].url, mirrors["wrong"].url, mirrors["good"].url]
    said: list[str] = []
    fetch(target, NAMES, sources=order, checksums=sums, say=said.append)
    assert sorted(p.name for p in target.iterdir()) == sorted(NAMES)  # no .part file left
    for name in NAMES:
        assert (target / name).read_bytes() == (folder / name).read_bytes()
    assert all(m.requests == NAMES for m in mirrors.values())  # each tried in order per file
    assert said[:3] == [f"fetching {url}{NAMES[0]}" for url in order]


def test_a_fetched_cache_is_reused_without_the_network(
    tmp_path: Path,
    published: tuple[Path, dict[str, str]],
    mirrors: dict[str, Mirror],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "data"
    fetch(target, NAMES, sources=[mirrors["good"].url], checksums=published[1], say=print)
    for server in mirrors.values():
        server.close()
    monkeypatch.setenv(MIRRORS_VARIABLE, mirrors["good"].url)  # now closed
    source = load_source("mnist", target)
    assert source.train_images.shape == (60, 14, 14)
    assert source.test_images.shape == (40, 14, 14)
    assert mirrors["good"].requests == NAMES  # once each, by the fetch above


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("drop", "cut short at"), ("wrong", "not the published")],
)
def test_a_bad_mirror_alone_is_refused_in_one_line_and_leaves_nothing(
    tmp_path: Path,
    published: tuple[Path, dict[str, str]],
    mirrors: dict[str, Mirror],
    mode: str,
    reason: str,
) -> None:
    target = tmp_path / "new" / "mnist"
    with pytest.raises(DataError) as e:
        fetch(target, NAMES, sources=[mirrors[mode].url], checksums=published[1], say=print)
    message = str(e.value)
    assert "\n" not in message
    assert f"cannot fetch {NAMES[0]} ({mirrors[mode].url}{NAMES[0]}" in message
    assert reason in message
    assert f"put {', '.join(NAMES)} in {target}" in message
    assert not (tmp_path / "new").exists()


def test_files_fetched_before_a_failure_are_complete_and_kept(
    tmp_path: Path, published: tuple[Path, dict[str, str]], mirrors: dict[str, Mirror]
) -> None:
    folder, sums = published
    only_two = tmp_path / "two"
    only_two.mkdir()
    for name in NAMES[:2]:
        (only_two / name).write_bytes((folder / name).read_bytes())
    partial = Mirror(only_two, "good")
    try:
        with pytest.raises(DataError, match=f"cannot fetch {NAMES[2]} .*HTTP 404"):
            fetch(tmp_path / "data", NAMES, sources=[partial.url], checksums=sums, say=print)
    finally:
        partial.close()
    kept = sorted((tmp_path / "data").iterdir())
    assert [p.name for p in kept] == sorted(NAMES[:2])
    assert all(hashlib.md5(p.read_bytes()).hexdigest() == sums[p.name] for p in kept)


def test_only_the_missing_files_are_fetched(
    tmp_path: Path,
    published: tuple[Path, dict[str, str]],
    mirrors: dict[str, Mirror],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sums = published[1]
    target = tmp_path / "data"
    write_mnist(target, gz=False)  # plain files, as a user may have them
    (target / "t10k-labels-idx1-ubyte").unlink()
    monkeypatch.setenv(MIRRORS_VARIABLE, mirrors["good"].url)
    # The generated files' MD5s are not MNIST's: the load fetches and checks against the
    # published sums, so this mirror's bytes are refused, and nothing else is asked for.
    with pytest.raises(DataError, match="not the published"):
        load_source("mnist", target)
    assert mirrors["good"].requests == ["t10k-labels-idx1-ubyte.gz"]
    fetch(target, ["t10k-labels-idx1-ubyte.gz"], sources=[mirrors["good"].url],
          checksums=sums, say=print)  # fmt: skip
    source = load_source("mnist", target)
    assert torch.equal(source.test_labels, torch.arange(40) % 10)
