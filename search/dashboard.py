"""python -m search.dashboard: open a study in optuna-dashboard, found by its name.

Equivalent to the `optuna-dashboard STORAGE --artifact-dir studies/artifacts` line that
search.run prints; this finds the storage under studies/ for you.
"""

# ruff: noqa: E402 (a stop during the imports below must already exit quietly)
from __future__ import annotations

from search.stopping import exit_quietly

exit_quietly("search.dashboard")

import errno
import socket
import sys

import optuna
from optuna.artifacts import FileSystemArtifactStore

from search.cli import Parser, add_study_options, fail, one_line_errors, port_number
from search.errors import UsageError
from search.execution import dashboard_command
from search.paths import ARTIFACT_DIR
from search.stopping import end_server_on_stop
from search.storage import find_storage, open_storage

PROG = "search.dashboard"


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__)
    add_study_options(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for other machines (default: 127.0.0.1)",
    )
    p.add_argument("--port", type=port_number, default=8080, help="port (default: 8080)")
    return p  # fmt: skip


def check_address(host: str, port: int) -> None:
    """Bind --host and --port once before the server starts, so that an address that is not
    this machine's, or a port in use, is one line saying which (the server would print its
    banner first)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as e:
        raise UsageError(f"--host {host}: not an address ({e.strerror})") from None
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} is in use on {host}; try another --port") from None
            if e.errno == errno.EADDRNOTAVAIL:
                raise UsageError(
                    f"--host {host} is not an address of this machine; use 127.0.0.1, or "
                    "0.0.0.0 for every address"
                ) from None
            raise UsageError(f"cannot listen on {host}:{port} ({e.strerror})") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with one_line_errors(PROG):
        spec = find_storage(args.study, args.storage)
        storage = open_storage(spec, create=False, writes=False)
        try:
            optuna.load_study(study_name=args.study, storage=storage)
        except KeyError:
            raise UsageError(f"no study {args.study!r} in {spec.shown}") from None
        check_address(args.host, args.port)
    from optuna_dashboard import run_server

    ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"study {args.study!r}: http://{args.host}:{args.port}/dashboard")
    print(f"(the same as: {dashboard_command(spec)} --host {args.host} --port {args.port})")
    end_server_on_stop()
    try:
        run_server(storage, host=args.host, port=args.port,
                   artifact_store=FileSystemArtifactStore(str(ARTIFACT_DIR)))  # fmt: skip
    except OSError as e:
        fail(PROG, f"cannot listen on {args.host}:{args.port} ({e.strerror}); try another --port")
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
