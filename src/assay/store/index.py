"""The SQLite index: derived from run folders, rebuilt by `assay reindex`, safe for many writers.

WAL journal + a busy timeout + `BEGIN IMMEDIATE` for writes, so several `assay run` processes on
one lab never see "database is locked". The schema version lives in `PRAGMA user_version`;
MIGRATIONS[i] upgrades version i to i+1.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from assay import identity
from assay.errors import StoreError

T = TypeVar("T")

MIGRATIONS: list[str] = [
    # 0 -> 1
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, experiment TEXT, folder TEXT, desc TEXT, status TEXT, reason TEXT,
        exit_code INTEGER, started REAL, ended REAL, duration REAL, peak_rss INTEGER, peak_gpu INTEGER,
        git_commit TEXT, seed INTEGER, primary_metric TEXT, primary_last REAL, primary_best REAL,
        group_id TEXT, ignored INTEGER NOT NULL DEFAULT 0, path TEXT NOT NULL, owner_pid INTEGER,
        owner_started REAL
    );
    CREATE INDEX runs_exp_started ON runs(experiment, started);
    CREATE INDEX runs_status ON runs(status);
    CREATE TABLE params (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT, num REAL,
        PRIMARY KEY (run_id, key)) WITHOUT ROWID;
    CREATE INDEX params_key ON params(key, num);
    CREATE TABLE metrics (run_id TEXT NOT NULL, key TEXT NOT NULL, last REAL, best REAL,
        best_step INTEGER, last_step INTEGER, count INTEGER, PRIMARY KEY (run_id, key)) WITHOUT ROWID;
    CREATE INDEX metrics_key ON metrics(key, last);
    CREATE TABLE tags (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
        PRIMARY KEY (run_id, key)) WITHOUT ROWID;
    """,
    # 1 -> 2: the runs listing counts an experiment's shown (not ignored) runs from this index alone,
    # instead of reading every row (10,000 runs: `assay runs` 5.0 -> 2.4 ms)
    """
    CREATE INDEX runs_exp_visible ON runs(experiment, ignored, started);
    """,
    # 2 -> 3: run identity (entry point, code version, params): runs of different code never pool.
    # Rows indexed before it get their identity from their run.json (_backfill_identity).
    """
    ALTER TABLE runs ADD COLUMN entry TEXT;
    ALTER TABLE runs ADD COLUMN code TEXT;
    ALTER TABLE runs ADD COLUMN code_label TEXT;
    ALTER TABLE runs ADD COLUMN config TEXT;
    """,
    # 3 -> 4: the cost ledger (run.json `cost`), for `runs --cost`, `compare --cost` and sweep totals.
    # Rows indexed before it get theirs from their run.json (_backfill_cost).
    """
    ALTER TABLE runs ADD COLUMN cpu_hours REAL;
    ALTER TABLE runs ADD COLUMN gpu_hours REAL;
    ALTER TABLE runs ADD COLUMN money REAL;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        try:
            return float(v)
        except OverflowError:  # an int past 1e308: no number to sort or filter by; the JSON text keeps it
            return None
    return None


_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


def _cell(v: Any) -> Any:
    """A record value as SQLite can bind it. The run record keeps the exact value; the index stores
    an int past SQLite's 64-bit range (seed=99999999999999999999999, a step of 10**30) as REAL (or as
    text past 1e308), and a list or dict where a scalar belongs as its JSON text."""
    if v is None or isinstance(v, (str, float)):
        return v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        if _INT_MIN <= v <= _INT_MAX:
            return v
        try:
            return float(v)
        except OverflowError:
            return str(v)
    return json.dumps(v, default=str)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    from assay.config import flatten

    return flatten(d, prefix)


def param_value(text: str) -> Any:
    """A param's JSON text (as json.dumps wrote it) -> value. Numbers and plain strings, nearly
    every param, skip the JSON parser: a page of 20 runs x 20 params decodes 3x faster."""
    first = text[:1]
    if first in _NUMBER_START and text != "-Infinity":
        return float(text) if "." in text or "e" in text or "E" in text else int(text)
    if first == '"' and "\\" not in text:  # no escapes: the characters between the quotes are the value
        return text[1:-1]
    return json.loads(text)


_NUMBER_START = frozenset("-0123456789")


TABLES = ("runs", "params", "metrics", "tags")


class Index:
    """A connection to the lab's index; a context manager. Queries live in store/query.py."""

    def __init__(self, path: Path, *, experiments_dir: Path | None = None) -> None:
        """Open the index at `path`, creating it or upgrading an older schema.

        Args:
            path: the database file (a lab's `index_path`; `lab.index()` opens it).
            experiments_dir: where the lab keeps its experiments. Upgrading an index from before
                schema 3 reads each row's run.json there by experiment and folder name (right even
                when the lab was moved); without it, at the path the row recorded.

        Raises:
            StoreError: an index made by a newer assay, an unreadable file, or an index that needs
                an upgrade on a read-only lab.
        """
        self.path = Path(path)
        self.experiments_dir = experiments_dir
        # A lab on a read-only mount or without write permission is still read: the index is opened
        # read-only, readers skip what they would record (a lost run), writers get a StoreError.
        self.readonly = not writable(self.path)
        if not self.readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = _open_readonly(self.path) if self.readonly else sqlite3.connect(
                self.path, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA busy_timeout=60000")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"The index {self.path} was made by a newer assay (schema {version} > {SCHEMA_VERSION})",
                    "Upgrade assay (pip install -U assay), or rebuild it for this version: assay reindex --force",
                )
            if self.readonly:
                if version < SCHEMA_VERSION:
                    raise StoreError(f"The index {self.path} is from an older assay (schema {version} < "
                                     f"{SCHEMA_VERSION}) and cannot be upgraded: the lab is read-only",
                                     READ_ONLY_HINT)
                return
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            if version < SCHEMA_VERSION:
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise _store_error(exc, self.path) from None

    def _migrate(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
            for i in range(version, SCHEMA_VERSION):
                for stmt in MIGRATIONS[i].split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
            if 0 < version < 3:
                _backfill_identity(self.db, self.experiments_dir)
            if 0 < version < 4:
                _backfill_cost(self.db, self.experiments_dir)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def damaged(self) -> str | None:
        """Why this index cannot be trusted (a missing table, a corrupt page), or None. Reads every page."""
        have = {n for (n,) in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = [t for t in TABLES if t not in have]
        if missing:
            return f"missing tables: {', '.join(missing)}"
        check = self.db.execute("PRAGMA quick_check").fetchone()[0]
        return None if check == "ok" else check

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        if isinstance(exc, sqlite3.DatabaseError):  # a corrupt page met by a query: say so, not a traceback
            raise _store_error(exc, self.path) from None

    # -- writes -------------------------------------------------------------
    def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(db, *args) in one immediate transaction, retrying if the lock wait runs out."""
        if self.readonly:
            raise StoreError(f"The lab of the index {self.path} is read-only: cannot update it", READ_ONLY_HINT)
        for attempt in range(20):
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise
            try:
                out = fn(self.db, *args)
                self.db.execute("COMMIT")
                return out
            except BaseException as exc:
                if self.db.in_transaction:  # SQLite may already have rolled back (a full disk does)
                    self.db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise _store_error(exc, self.path) from None
                raise
        raise StoreError(f"The index {self.path} stayed locked", "Retry; if it persists, stop other assay processes.")

    def upsert(self, path: Path, record: dict[str, Any], ignored: bool | None = None) -> None:
        self.write(_upsert, path, record, ignored)

    def set_ignored(self, run_id: str, ignored: bool) -> None:
        self.write(lambda db: db.execute("UPDATE runs SET ignored=? WHERE id=?", (int(ignored), run_id)))

    def rebuild(self, rows: list[tuple[Path, dict[str, Any], bool]]) -> list[tuple[Path, str]]:
        """Replace the whole index with `rows` in one transaction (readers see old or new).

        Returns the rows left out, with why: one record the index cannot hold (a hand-edited
        run.json) is skipped, not a reason to leave the whole lab unindexed.
        """

        def _do(db: sqlite3.Connection) -> list[tuple[Path, str]]:
            for table in TABLES:
                db.execute(f"DELETE FROM {table}")
            skipped = []
            for path, record, ignored in rows:
                db.execute("SAVEPOINT row")
                try:
                    _upsert(db, path, record, ignored)
                except (sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.IntegrityError, OverflowError,
                        AttributeError, TypeError, ValueError, RecursionError) as exc:
                    db.execute("ROLLBACK TO row")
                    skipped.append((path, f"{type(exc).__name__}: {exc}"))
                db.execute("RELEASE row")
            return skipped

        return self.write(_do)


def writable(path: Path) -> bool:
    """Whether `path` (or, when it does not exist yet, the nearest folder above it) can be written,
    along with its folder: SQLite writes its -wal and -shm files next to the database. False on a
    read-only mount even for root (access(2) reports EROFS)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


READ_ONLY_HINT = ("Work in a writable copy of the lab (cp -r LAB ~/lab-copy), or ask its owner to make it writable; "
                  "reading commands (runs, show, compare, status, ui) work as it is.")


def _open_readonly(path: Path) -> sqlite3.Connection:
    """The index opened read-only: `mode=ro`, else `immutable=1` (a WAL database in a folder where
    SQLite cannot create its -shm file opens only so; nothing can be writing a read-only lab)."""
    if not path.is_file():
        raise StoreError(f"The lab is read-only and has no index ({path})", READ_ONLY_HINT)
    uri = path.resolve().as_uri()
    for mode in ("mode=ro", "immutable=1"):
        db = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=60, isolation_level=None)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            db.close()
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=60, isolation_level=None)  # its error, at use


_SHARED = threading.local()  # per thread: {(index path, pid): (Index, file id)}; gone with its thread
_SHARED_MAX = 4


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


@contextmanager
def shared_index(path: Path, *, experiments_dir: Path | None = None) -> Iterator[Index]:
    """An index connection kept open for this thread between calls, as a client library keeps its
    connection pool: opening and closing one is a third of the cost of a page of runs (~0.4 of
    ~1.2 ms). It is reopened when the file was replaced, lives and dies with its thread (SQLite
    connections may not cross threads), is never reused after a fork, and is dropped after any
    database error.
    """
    held_by_thread: dict[tuple[str, int], tuple[Index, tuple[int, int]]] = _SHARED.__dict__.setdefault("held", {})
    key = (str(path), os.getpid())
    held = held_by_thread.pop(key, None)  # taken out while in use: a nested call opens its own
    if held and held[1] != _file_id(path):
        held[0].close()
        held = None
    index = held[0] if held else Index(path, experiments_dir=experiments_dir)
    try:
        yield index
    except sqlite3.DatabaseError as exc:
        index.close()
        raise _store_error(exc, index.path) from None
    except BaseException:
        _keep(held_by_thread, key, index)
        raise
    else:
        _keep(held_by_thread, key, index)


def _keep(held: dict[tuple[str, int], tuple[Index, tuple[int, int]]], key: tuple[str, int], index: Index) -> None:
    ident = _file_id(index.path)
    if ident is None:
        index.close()
        return
    held[key] = (index, ident)
    while len(held) > _SHARED_MAX:  # this thread's oldest goes (dicts keep insertion order)
        held.pop(next(iter(held)))[0].close()


_UNREADABLE = (1, 11, 26)  # SQLITE_ERROR (no such table: a damaged schema), SQLITE_CORRUPT, SQLITE_NOTADB


def _store_error(exc: sqlite3.DatabaseError, path: Path) -> StoreError:
    """A corrupt index is rebuilt with reindex --force; a full disk or an I/O error is not the index's fault
    (moving it aside would not help), so say which it is."""

    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in _UNREADABLE or (not code and "not a database" in str(exc)):
        return StoreError(f"The index {path} is unreadable ({exc})", "Rebuild it from the run folders: assay reindex --force")
    try:
        st = os.statvfs(path.parent)
        full = st.f_bavail * st.f_frsize < 1 << 20
    except OSError:
        full = False
    if full or code == 13:  # SQLITE_FULL
        return StoreError(f"The disk holding the index {path} is full ({exc})",
                          f"Free space (df -h {path.parent}) and retry; the index and the run folders are intact.")
    return StoreError(f"Could not use the index {path} ({exc})",
                      f"Check the disk and permissions of {path.parent}; the run folders are untouched, and "
                      "`assay reindex` rebuilds the index from them.")


def _backfill_identity(db: sqlite3.Connection, experiments_dir: Path | None) -> None:
    """Fill entry/code/config of rows indexed before those columns existed, from their run.json
    (found under `experiments_dir` by experiment and folder name, which stay right when a lab is
    moved; else at the path the row recorded)."""
    from assay.store.records import RECORD_FILE

    rows = db.execute("SELECT id, experiment, folder, path FROM runs WHERE config IS NULL").fetchall()
    for rid, experiment, folder, path in rows:
        where = (experiments_dir / experiment / "runs" / folder if experiments_dir and experiment and folder
                 else Path(path or ""))
        try:
            record = json.loads((where / RECORD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a missing or corrupt folder: `assay reindex` reports it
        if isinstance(record, dict):
            db.execute("UPDATE runs SET entry=?, code=?, code_label=?, config=? WHERE id=?",
                       (record.get("entry"), identity.code_fingerprint(record), identity.code_label(record),
                        identity.config_hash(record), rid))


def _backfill_cost(db: sqlite3.Connection, experiments_dir: Path | None) -> None:
    """Fill the cost columns of rows indexed before they existed, from their run.json (a run
    recorded before the ledger has none: its columns stay empty)."""
    from assay.store.records import RECORD_FILE

    for rid, experiment, folder, path in db.execute("SELECT id, experiment, folder, path FROM runs").fetchall():
        where = (experiments_dir / experiment / "runs" / folder if experiments_dir and experiment and folder
                 else Path(path or ""))
        try:
            record = json.loads((where / RECORD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        cost = _mapping(record.get("cost")) if isinstance(record, dict) else {}
        if cost:
            db.execute("UPDATE runs SET cpu_hours=?, gpu_hours=?, money=? WHERE id=?",
                       (*map(_cell, (cost.get("cpu_hours"), cost.get("gpu_hours"), cost.get("money"))), rid))


def _upsert(db: sqlite3.Connection, path: Path, record: dict[str, Any], ignored: bool | None) -> None:
    rid = record["id"]
    primary = record.get("primary_metric")
    metrics = _mapping(record.get("metrics"))
    pm = _mapping(metrics.get(primary)) if isinstance(primary, str) else {}
    if ignored is None:
        row = db.execute("SELECT ignored FROM runs WHERE id=?", (rid,)).fetchone()
        ignored = bool(row[0]) if row else False
    git = _mapping(record.get("git"))
    cost = _mapping(record.get("cost"))
    db.execute(
        "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        tuple(map(_cell, (
            rid, record.get("experiment"), path.name, record.get("desc"), record.get("status"), record.get("reason"),
            record.get("exit_code"), record.get("started"), record.get("ended"), record.get("duration"),
            record.get("peak_rss"), record.get("peak_gpu_mem"), git.get("commit"), record.get("seed"), primary,
            pm.get("last"), pm.get("best"), record.get("group"), int(bool(ignored)), str(path),
            record.get("owner_pid"), record.get("owner_started"), record.get("entry"), identity.code_fingerprint(record),
            identity.code_label(record), identity.config_hash(record), cost.get("cpu_hours"), cost.get("gpu_hours"),
            cost.get("money")))),
    )
    for table in ("params", "metrics", "tags"):
        db.execute(f"DELETE FROM {table} WHERE run_id=?", (rid,))
    params = _flat(_mapping(record.get("params")))
    db.executemany("INSERT INTO params VALUES (?,?,?,?)",
                   [(rid, k, json.dumps(v, default=str), _num(v)) for k, v in params.items()])
    db.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?,?)",
                   [(rid, str(k), *map(_cell, (s.get("last"), s.get("best"), s.get("best_step"), s.get("last_step"),
                                               s.get("count"))))
                    for k, s in metrics.items() if isinstance(s, dict)])
    db.executemany("INSERT INTO tags VALUES (?,?,?)",
                   [(rid, str(k), str(v)) for k, v in _mapping(record.get("tags")).items()])


def _mapping(v: Any) -> dict[Any, Any]:
    """A record field that should hold a mapping; anything else (a hand-edited run.json) reads as empty."""
    return v if isinstance(v, dict) else {}
