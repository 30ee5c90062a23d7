"""Shared command-line helpers: one-line errors and typed flag values."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from models import DEVICES, MAX_ENSEMBLE, PRECISIONS
from search.errors import FAULTS, USER_ERRORS, full_disk
from search.machine import CORES
from search.paths import DEFAULT_STUDY
from search.study import StudySettings, smallest_params


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the fix, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def _number(text: str, cast: type, ok: Callable[[float], bool], wanted: str) -> Any:
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(
            f"expected {wanted}, got {text if cast is float else value}"
        )
    return value


def study_setting(name: str) -> Callable[[str], int]:
    """The argparse type of the flag that sets study setting `name`: what StudySettings.RANGES
    says it must be, for the flag and for a stored study alike."""
    ok, wanted = StudySettings.RANGES[name]

    def parse(text: str) -> int:
        return _number(text, int, ok, wanted)

    return parse


def add_setting(
    p: argparse.ArgumentParser, name: str, text: str, *, default: str | None = None
) -> None:
    """The flag of study setting `name` (--name, None where not given), its help built from the
    one StudySettings: the range it must be in, and its default (`default` where that needs
    words), which an existing study's own value overrides."""
    shown = default if default is not None else str(getattr(StudySettings(), name))
    p.add_argument(
        "--" + name.replace("_", "-"),
        type=study_setting(name),
        default=None,
        help=f"{text}; {StudySettings.RANGES[name][1]} (default: {shown}, or the study's)",
    )


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def count(high: int) -> Callable[[str], int]:
    """The argparse type of a count from 1 to `high`: every count a user types has a bound
    that fits the machine, said in its flag's help."""

    def parse(text: str) -> int:
        return _number(text, int, lambda v: 1 <= v <= high, f"1 to {high:,}")

    return parse


def ensemble_size(text: str) -> int:
    n = positive_int(text)
    if n > MAX_ENSEMBLE:
        raise argparse.ArgumentTypeError(f"at most {MAX_ENSEMBLE} nets, got {n}")
    return n


def parameter_budget(text: str) -> int | None:
    """--max-params: a positive integer that at least the search space's smallest net fits, or
    "none" (no budget, NO_BUDGET; what the compose file passes when MAX_PARAMS is unset): on a
    study created with a budget, "none" is a change of it, refused like any other."""
    if text == "none":
        return StudySettings.NO_BUDGET
    n = positive_int(text)
    smallest = smallest_params()
    if n < smallest:
        raise argparse.ArgumentTypeError(
            f"no configuration of the search space fits {n:,} parameters "
            f"(the smallest has {smallest:,})"
        )
    return n


def non_negative_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


MAX_HEARTBEAT = 3600
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def seed_value(text: str) -> int:
    return study_setting("seed")(text)


def heartbeat_seconds(text: str) -> int:
    return _number(text, int, lambda v: 1 <= v <= MAX_HEARTBEAT, f"1 to {MAX_HEARTBEAT} seconds")


def port_number(text: str) -> int:
    return _number(text, int, lambda v: 1 <= v <= 65535, "a port from 1 to 65535")


def study_name(text: str) -> str:
    """A study name is also a file name under studies/: no folders, nothing hidden."""
    if not STUDY_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r}{'...' if len(text) > 40 else ''} is not a study name: use 1-100 "
            "letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return text


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "a positive number")


def share(text: str) -> float:
    """A share of a whole: from 0 up to, not including, 1."""
    return _number(text, float, lambda v: 0 <= v < 1, "a number from 0 up to 1 (not 1)")


def add_study_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--study", type=study_name, default=DEFAULT_STUDY, help="study name (default: %(default)s)"
    )
    p.add_argument(
        "--storage",
        default=None,
        help="sqlite:///FILE.db, postgresql+psycopg://USER@HOST:PORT/DB or FILE.journal "
        "(default: the study's file under studies/, STUDY.db or STUDY.journal)",
    )


def add_device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="auto picks CUDA when present (default: %(default)s)",
    )


def add_precision_option(p: argparse.ArgumentParser, what: str, default: str) -> None:
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help=f"the arithmetic {what}: fp32, or bf16 autocast (weights stay fp32); auto picks "
        "bf16 where the hardware runs it fast (a GPU of compute capability 8.0 or newer, a CPU "
        f"with AVX-512 BF16 or AMX), else fp32 (default: {default})",
    )


def add_workers_option(p: argparse.ArgumentParser, *, default: int | None, help: str) -> None:
    p.add_argument("--workers", type=positive_int, default=default, help=help)


def check_workers(prog: str, workers: int, flag: str = "--workers") -> None:
    """More than 4 processes (or threads) per core only slows every one of them."""
    limit = 4 * CORES
    if workers > limit:
        fail(prog, f"{flag} {workers} is more than 4 per core ({limit}); ask fewer")


def fail(prog: str, message: object, status: int = 2) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(status)


def fail_on_full_disk(prog: str, error: OSError) -> NoReturn:
    """A write that found no space ends the command in one line (exit 1); any other OSError
    is a bug and keeps its traceback."""
    message = full_disk(error)
    if not message:
        raise error
    fail(prog, message, status=1)


@contextmanager
def one_line_errors(prog: str) -> Iterator[None]:
    """The tail every command shares: the project's own errors end it in one line, a mistake
    with status 2 and a fault of the environment (a database gone, a damaged journal, a full
    disk) with 1; any other exception is a bug and keeps its traceback."""
    try:
        yield
    except USER_ERRORS as e:
        fail(prog, e)
    except FAULTS as e:
        fail(prog, e, status=1)
    except OSError as e:
        fail_on_full_disk(prog, e)
