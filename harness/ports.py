"""Free local ports for the servers the tests and the benchmarks start."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port nothing on 127.0.0.1 listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
