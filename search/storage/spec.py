"""Which storage a study is in: a --storage value parsed, or the study's own file found under
studies/, with passwords masked wherever a URL is shown."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy

from search.errors import UsageError
from search.paths import ARTIFACT_DIR, STUDIES_DIR

JOURNAL_SUFFIXES = (".journal", ".log")


@dataclass(frozen=True)
class StorageSpec:
    kind: str  # sqlite | journal | postgresql
    url: str  # SQLAlchemy URL, or the journal file's path

    @property
    def path(self) -> Path | None:
        if self.kind == "sqlite":
            return Path(self.url.removeprefix("sqlite:///").split("?", 1)[0])
        if self.kind == "journal":
            return Path(self.url)
        return None

    @property
    def shown(self) -> str:
        """The URL as the project prints and stores it: a password is masked."""
        return mask_password(self.url)

    @property
    def shared(self) -> bool:
        """Whether several processes may write to it."""
        return self.kind != "sqlite"


def mask_password(text: str) -> str:
    """A database URL with its password as ***, or the text as it is when it is not one. Read
    from the text itself, not a URL parser: a password holding '@', ':' or '/' that is not
    percent-encoded must not show any part of it either. Everything between the user name's
    ':' and the last '@' is the password."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    at = rest.rfind("@", 0, len(rest.split("?", 1)[0]))
    if at < 0 or ":" not in rest[:at]:
        return text
    return f"{scheme}://{rest[: rest.index(':')]}:***@{rest[at + 1 :]}"


def mask_argv(args: list[str]) -> list[str]:
    """Command-line words with any database password masked (`--storage=URL` included)."""
    out = []
    for a in args:
        flag, eq, value = a.partition("=")
        out.append(
            f"{flag}={mask_password(value)}" if eq and a.startswith("--") else mask_password(a)
        )
    return out


def parse_storage(text: str) -> StorageSpec:
    """A --storage value: sqlite:///PATH, postgresql[+psycopg]://..., or PATH.journal."""
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if scheme == "sqlite":
            if not rest.startswith("/") or rest == "/":
                raise UsageError(
                    f"--storage {text}: write sqlite:///relative.db or sqlite:////abs.db"
                )
            target = rest.lstrip("/").split("?", 1)
            query = (target[1:] or [""])[0]
            name = target[0].removeprefix("file:") if "uri=true" in query else target[0]
            if name in (":memory:", "") or "mode=memory" in query:
                raise UsageError(
                    f"--storage {text}: an in-memory database loses every trial at exit; "
                    "write sqlite:///FILE.db"
                )
            if "uri=true" in query:
                raise UsageError(
                    f"--storage {text}: SQLite URI filenames (uri=true) are not read here; "
                    "write sqlite:///FILE.db"
                )
            return StorageSpec("sqlite", text)
        if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            url = "postgresql+psycopg://" + rest
            shown = mask_password(text)
            encode = (
                f"--storage {shown}: cannot read this PostgreSQL URL; percent-encode '@', ':' "
                "and '/' in the user name and password (%40, %3A, %2F), and give the port as "
                "a number"
            )
            if rest.count("@") > 1:
                raise UsageError(encode)
            try:
                parsed = sqlalchemy.engine.make_url(url)
            except (sqlalchemy.exc.ArgumentError, ValueError):
                raise UsageError(encode) from None
            if not parsed.database:
                raise UsageError(f"--storage {shown}: name the database, e.g. .../optuna")
            return StorageSpec("postgresql", url)
        raise UsageError(
            f"--storage {text}: unknown scheme {scheme!r}; use sqlite:///FILE.db, "
            "postgresql+psycopg://USER@HOST:PORT/DB or a journal file FILE.journal"
        )
    path = os.path.expanduser(text)  # a shell leaves ~ in --storage=~/x.journal
    if text.endswith(JOURNAL_SUFFIXES):
        return StorageSpec("journal", path)
    if text.endswith((".db", ".sqlite", ".sqlite3")):
        return StorageSpec("sqlite", f"sqlite:///{path}")
    raise UsageError(
        f"--storage {text}: not a storage; use sqlite:///FILE.db, "
        "postgresql+psycopg://USER@HOST:PORT/DB or a journal file FILE.journal"
    )


@dataclass(frozen=True)
class StorageChoice:
    """Where a run keeps its study, and how many worker processes that storage takes."""

    spec: StorageSpec
    workers: int
    default: bool  # chosen by this project (no --storage): commands it prints omit --storage
    note: str | None = None  # said once the run starts


def existing_file(study: str) -> StorageSpec | None:
    """The study's own file under studies/ (NAME.db or NAME.journal), if there is one."""
    db, journal = STUDIES_DIR / f"{study}.db", STUDIES_DIR / f"{study}.journal"
    if db.exists() and journal.exists():
        raise UsageError(f"both {db} and {journal} exist; choose one with --storage")
    if db.exists():
        return StorageSpec("sqlite", f"sqlite:///{db}")
    if journal.exists():
        return StorageSpec("journal", str(journal))
    return None


def choose_storage(
    study: str, flag: str | None, *, workers: int, workers_given: bool
) -> StorageChoice:
    """The storage of a search run: --storage, else the study's file under studies/, else a new
    studies/NAME.db for one worker or studies/NAME.journal for several. SQLite takes one
    process: asked for by default it runs one worker and says so; asked for with --workers K
    it is refused."""
    if flag is None:
        spec = existing_file(study) or (
            StorageSpec("journal", str(STUDIES_DIR / f"{study}.journal"))
            if workers > 1
            else StorageSpec("sqlite", f"sqlite:///{STUDIES_DIR / f'{study}.db'}")
        )
        if not spec.shared and workers > 1:
            note = (
                f"{spec.path} is SQLite, which one process only may write: running 1 worker "
                "(use --storage FILE.journal or PostgreSQL for several)"
            )
            return StorageChoice(spec, 1, default=True, note=note)
        return StorageChoice(spec, workers, default=True)
    spec = parse_storage(flag)
    if spec.shared or workers == 1:
        return StorageChoice(spec, workers, default=False)
    if not workers_given:
        return StorageChoice(
            spec, 1, default=False, note=f"{flag} is SQLite: running 1 worker, not {workers}"
        )
    raise UsageError(
        f"--storage {flag} is SQLite, which one process only may write; "
        f"use --workers 1, a journal file (studies/NAME.journal) or PostgreSQL for {workers}"
    )


def find_storage(study: str, flag: str | None) -> StorageSpec:
    """The storage of an existing study, for the commands that read one."""
    if flag is not None:
        return parse_storage(flag)
    spec = existing_file(study)
    if spec is None:
        raise UsageError(
            f"no study {study!r} under {STUDIES_DIR}/ ({study}.db or {study}.journal); "
            "run python -m search.run first or pass --storage"
        )
    return spec


def study_folder(study: str, spec: StorageSpec) -> Path:
    """The folder under studies/ where a study's final evaluation, model file and staging live.
    It is studies/STUDY for the study's own file (studies/STUDY.db or .journal, as found by
    default, where the other is not there too); a study in any other storage gets
    studies/STUDY@KIND-KEY, KEY a digest of where the storage is (the file's real path, or the
    server and database: never a password), so that studies of one name in two storages never
    share a folder (a study name holds no '@'). A study named as the artifact store is keyed
    too."""
    path = spec.path
    db, journal = STUDIES_DIR / f"{study}.db", STUDIES_DIR / f"{study}.journal"
    if study != ARTIFACT_DIR.name and path is not None:
        for own, other in ((db, journal), (journal, db)):
            if path.resolve() == own.resolve() and not other.exists():
                return STUDIES_DIR / study
    if spec.kind == "postgresql":
        url = sqlalchemy.engine.make_url(spec.url)
        where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"
    else:
        assert path is not None
        where = str(path.resolve())
    key = hashlib.sha256(f"{spec.kind}:{where}".encode()).hexdigest()[:8]
    return STUDIES_DIR / f"{study}@{spec.kind}-{key}"
