"""The HDF5 results store (schema v1.2, documented in docs/results-schema.md).

One file holds runs (with provenance) and cells (with per-sample arrays and a summary). Every change
is a transaction: under an exclusive lock on the sidecar `<store>.lock`, the file is read into memory,
changed there, written beside the store, synced and renamed over it. A writer killed at any moment
therefore leaves either the file before or the file after its transaction, and readers, who take no
lock, always open a complete file.
"""
from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import mmap
import os
import re
import secrets
import socket
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import h5py
import numpy as np

from bench import __version__
from bench.config import DEFAULT_STORE
from bench.errors import StoreError

SCHEMA_VERSION = 1
SCHEMA_MINOR = 2  # 1.1: cells carry `unreliable` and `unreliable_reason` (absent in 1.0 stores: reliable);
# 1.2: cells may carry the optional per-sample datasets of OPTIONAL_ARRAYS (absent in older stores)
TMP_PREFIX = "_incomplete_"  # cell groups of the pre-transaction writer; readers skip them, writers remove them
TXN_MARK = ".txn-"  # a transaction's working copy is `.<store name>.txn-<pid>-<hex>` beside the store
LOCK_NOTICE_S = 2.0  # a writer waiting this long for the lock says so on stderr, once
RUN_STATUSES = ("running", "complete", "failed", "interrupted")

SAMPLE_ARRAYS = {
    "sample_id": "str",
    "clean_score": np.float32,
    "adv_score": np.float32,
    "clean_correct": np.bool_,
    "attacked": np.bool_,
    "success": np.bool_,
    "linf": np.float32,
    "l2": np.float32,
    "queries": np.int64,
}
# per-sample datasets only some cells have (v1.2): minimal budgets of minimal-perturbation attacks, and
# the cascade stage that broke each sample (1-based; 0 = none)
OPTIONAL_ARRAYS = {
    "min_eps": np.float32,
    "stage": np.int16,
}


class SchemaTooNewError(StoreError):
    """A store written by a newer facebench (higher schema_version): never read as ours, never overwritten."""


@dataclass
class CellResult:
    """One stored cell: its configuration, its per-sample arrays and its summary."""

    cell_id: str
    config: dict
    arrays: dict[str, np.ndarray]
    summary: dict
    attrs: dict = field(default_factory=dict)
    unreliable: bool = False  # an integrity check failed (bench/checks.py); `unreliable_reason` says which
    unreliable_reason: str = ""


def cell_id_of(config: dict) -> str:
    """Stable id of a cell: a hash of its canonical JSON config."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:20]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _attr(value):
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return ""
    return value


def _decode(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _first_line(e: BaseException) -> str:
    """An exception as one short line; HDF5's multi-line I/O errors become their summary and the system's reason."""
    text = " ".join(str(e).split())
    if not text:
        return type(e).__name__
    reason = re.search(r"error message = '([^']*)'", text)
    if reason:
        return f"{text.split(' (')[0]}: {reason.group(1)}"
    return str(e).strip().splitlines()[0]


# ---------------------------------------------------------------------- writers and their liveness
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> int:
    """Start time of process `pid` in clock ticks since boot (Linux), 0 when unknown: tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def writer_identity() -> dict:
    """Who is writing: stored in a run's attributes so that `store verify` can tell a live run from a dead one."""
    return {"writer_pid": os.getpid(), "writer_host": socket.gethostname(), "writer_boot": _boot_id(),
            "writer_start": _process_start(os.getpid())}


def writer_state(meta: dict) -> str:
    """`alive`, `gone` or `unknown` (another host, or a run written before writers were recorded)."""
    pid, host = int(meta.get("writer_pid") or 0), str(meta.get("writer_host") or "")
    if not pid or host != socket.gethostname():
        return "unknown"
    boot = str(meta.get("writer_boot") or "")
    if boot and _boot_id() and boot != _boot_id():
        return "gone"  # the machine rebooted since
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # another user's process: alive
    start = int(meta.get("writer_start") or 0)
    if start and _process_start(pid) and _process_start(pid) != start:
        return "gone"  # the pid was reused by another process
    return "alive"


# ---------------------------------------------------------------------- the inter-process lock
def lock_path_of(store: Path) -> Path:
    return store.with_name(store.name + ".lock")


def lock_holder(store: Path) -> dict:
    """What the current (or last) holder of the store's lock wrote into it: pid, host, since; {} if unknown."""
    try:
        return json.loads(lock_path_of(store).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe_holder(holder: dict) -> str:
    if not holder.get("pid"):
        return "another process"
    return f"pid {holder['pid']} on {holder.get('host', '?')} (since {holder.get('since', '?')})"


class _FileLock:
    """An exclusive flock on `<store>.lock`, which holds the holder's pid and host while it is held."""

    def __init__(self, store: Path, shown: Path) -> None:
        self.store, self.shown, self.path = store, shown, lock_path_of(store)
        self.fd: Optional[int] = None

    def acquire(self) -> None:
        writable = True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:
            writable = False
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except OSError as e:
                raise StoreError(f"cannot lock store {self.shown}: {e.strerror} ({self.path})") from None
        except OSError as e:
            raise StoreError(f"cannot lock store {self.shown}: {e.strerror} ({self.path})") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                notice = threading.Timer(LOCK_NOTICE_S, self._notice)
                notice.daemon = True
                notice.start()
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                finally:
                    notice.cancel()
        except OSError as e:
            os.close(fd)
            raise StoreError(f"cannot lock store {self.shown}: {e.strerror} ({self.path})") from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        if writable:
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)

    def _notice(self) -> None:
        print(f"facebench: waiting for the lock on {self.shown} held by {_describe_holder(lock_holder(self.store))} "
              "(another writer; readers are not blocked)", file=sys.stderr, flush=True)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


@contextmanager
def try_flock(path: Path, *, shared: bool = False) -> Iterator[Optional[bool]]:
    """An flock on `path` taken without waiting: yields True while it is held (dropped on exit, or however the
    process ends), False when another process holds a conflicting one. Exclusive: the file is created when
    missing; shared: it is opened read-only, and None is yielded when it cannot be opened (no such file)."""
    try:
        fd = os.open(path, os.O_RDONLY) if shared else os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        if not shared:
            raise
        yield None
        return
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # drops the lock


@contextmanager
def _writers_paused(store: Path) -> Iterator[bool]:
    """Hold a shared lock on the store's lock file if no writer holds it: yields True when taken (no writer can start
    meanwhile, so any working copy seen is a leftover), False when a writer holds the lock now."""
    with try_flock(lock_path_of(store), shared=True) as taken:
        yield taken is not False  # None: no lock file, no writer ever locked this store


@dataclass
class _Transaction:
    file: h5py.File
    thread: int


_ACTIVE: dict[str, _Transaction] = {}  # real path of a store -> its open transaction in this process
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    """flock does not serialise the threads of one process on one open file; this does."""
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(key, threading.Lock())


_MEMORY_FILES = itertools.count()


def _in_memory(image) -> h5py.File:
    """An HDF5 file held in memory (HDF5's core driver without a backing file), from `image` or new: a transaction's
    working copy. HDF5 never writes to disk for it, so a full disk can only fail our own write of the result."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_LATEST)  # as h5py.File does by default
    fapl.set_fapl_core(1 << 20, False)
    name = f"facebench-transaction-{os.getpid()}-{next(_MEMORY_FILES)}".encode()  # never created on disk
    if image is None:
        return h5py.File(h5py.h5f.create(name, h5py.h5f.ACC_EXCL, fapl=fapl))
    fapl.set_file_image(image)
    return h5py.File(h5py.h5f.open(name, h5py.h5f.ACC_RDWR, fapl=fapl))


def _write_new(path: Path, data: bytes, mode: Optional[int]) -> None:
    """Write `data` to the new file `path` and fsync it; `mode`: its permissions (None: the umask's default)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view, done = memoryview(data), 0
        while done < len(view):
            done += os.write(fd, view[done:done + (8 << 20)])
        if mode is not None:
            os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a directory; the rename itself is still atomic
    finally:
        os.close(fd)


def _init_schema(f: h5py.File) -> None:
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["schema_minor"] = SCHEMA_MINOR
    f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    f.attrs["facebench_version"] = __version__
    f.create_group("runs")
    f.create_group("cells")


# ---------------------------------------------------------------------- verification report
@dataclass
class VerifyReport:
    """What `ResultsStore.verify` found: problems make the store unsound; warnings and notes do not."""

    path: Path
    schema: str = ""
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs_by_status: Counter = field(default_factory=Counter)
    cells_by_kind: dict = field(default_factory=dict)  # (model, goal, attack) -> [cells, samples]
    cells: int = 0
    samples: int = 0

    @property
    def sound(self) -> bool:
        return not self.problems


class ResultsStore:
    """A facebench HDF5 store at `path`."""

    def __init__(self, path: os.PathLike | str = DEFAULT_STORE) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ opening
    def check_writable(self) -> None:
        """Fail early (before any work) when the store cannot be created or is not ours."""
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if self.path.exists():
            if self.path.is_dir():
                raise StoreError(f"store path {self.path} is a directory, not a file")
            with self._read():
                pass
            if not os.access(self.path, os.W_OK):
                raise StoreError(f"store {self.path} is not writable")
            real_parent = self._real().parent
            if not os.access(real_parent, os.W_OK):
                raise StoreError(f"store {self.path} cannot be updated: its directory {real_parent} is not writable "
                                 "(each write replaces the file atomically)")
            return
        if not parent.exists():
            raise StoreError(f"cannot create store {self.path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise StoreError(f"cannot create store {self.path}: directory {parent} is not writable")

    def _real(self) -> Path:
        return Path(os.path.realpath(self.path))

    def _own_transaction(self) -> Optional[_Transaction]:
        txn = _ACTIVE.get(str(self._real()))
        return txn if txn is not None and txn.thread == threading.get_ident() else None

    @contextmanager
    def _open(self, mode: str) -> Iterator[h5py.File]:
        """The store for one operation: inside this thread's transaction its working copy; else a plain read-only
        open ("r") or a transaction of its own ("a")."""
        txn = self._own_transaction()
        if txn is None and mode == "r":
            with self._read() as f:
                yield f
        elif txn is None:
            with self.transaction(), self._open(mode) as f:
                yield f
        else:
            try:
                yield txn.file
            except (OSError, KeyError, RuntimeError) as e:
                how = "read" if mode == "r" else "update"
                raise StoreError(f"cannot {how} store {self.path}: {_first_line(e)} (the transaction is abandoned; the "
                                 "store is unchanged)") from None

    @contextmanager
    def _read(self) -> Iterator[h5py.File]:
        """Open the committed store read-only, without the lock: it is only ever replaced whole, never changed."""
        if not self.path.exists():
            raise StoreError(f"store {self.path} does not exist (run `facebench run` first)")
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a directory, not a file")
        try:
            signed = h5py.is_hdf5(self.path)
        except OSError as e:
            raise StoreError(f"cannot open store {self.path}: {_first_line(e)}") from None
        if not signed:
            raise StoreError(f"{self.path} is not an HDF5 file (refusing to read or overwrite it)")
        try:
            f = h5py.File(self.path, "r")
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot open store {self.path} (damaged?): {_first_line(e)}") from None
        try:
            self._check_schema(f)
            try:
                yield f
            except (OSError, KeyError, RuntimeError, ValueError) as e:  # ValueError: e.g. a damaged JSON attribute
                raise StoreError(f"cannot read store {self.path} (damaged?): {_first_line(e)}") from None
        finally:
            f.close()

    def _check_schema(self, f: h5py.File) -> None:
        try:
            version = f.attrs.get("schema_version")
        except (OSError, KeyError, RuntimeError) as e:
            raise StoreError(f"cannot read store {self.path} (damaged?): {_first_line(e)}") from None
        if version is None:
            raise StoreError(f"{self.path} is an HDF5 file but not a facebench store (no schema_version)")
        if int(version) > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"store {self.path} has schema v{int(version)}, newer than this facebench (v{SCHEMA_VERSION}); upgrade facebench"
            )
        for name in ("runs", "cells"):
            try:
                ok = isinstance(f.get(name), h5py.Group)
            except (OSError, KeyError, RuntimeError):
                ok = False
            if not ok:
                raise StoreError(f"store {self.path} is damaged: its group {name}/ is missing or unreadable")

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator["ResultsStore"]:
        """Group writes into one atomic change: all of them reach the store, or none (on an exception, or if the
        process dies). Holds the store's lock throughout; a transaction opened inside another on the same store
        (same thread) joins it. Reads inside the transaction see its writes; other readers see them at commit."""
        if self._own_transaction() is not None:
            yield self
            return
        real = self._real()
        key = str(real)
        with _thread_lock(key):
            lock = _FileLock(real, self.path)
            lock.acquire()
            try:
                self._remove_leftovers(real)
                exists = real.exists()
                if exists:
                    with self._read():  # refuse a file that is not a (readable, current) store before loading it
                        pass
                tmp = real.with_name(f".{real.name}{TXN_MARK}{os.getpid()}-{secrets.token_hex(4)}")
                failed = f"cannot update store {self.path}: {{}} (the store is unchanged)"
                f = None
                try:
                    try:
                        if exists:
                            mode = os.stat(real).st_mode & 0o7777
                            with open(real, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as image:
                                f = _in_memory(image)  # HDF5 copies the image: one pass over the file
                        else:
                            mode, f = None, _in_memory(None)
                            _init_schema(f)
                    except (OSError, RuntimeError, ValueError) as e:
                        raise StoreError(failed.format(_first_line(e))) from None
                    _ACTIVE[key] = _Transaction(f, threading.get_ident())
                    try:
                        yield self
                    finally:
                        del _ACTIVE[key]
                    try:
                        f.flush()
                        image = f.id.get_file_image()
                        f.close()
                        f = None
                        _write_new(tmp, image, mode)
                        del image
                        os.replace(tmp, real)
                    except (OSError, RuntimeError) as e:
                        raise StoreError(failed.format(_first_line(e))) from None
                    _fsync_dir(real.parent)
                except BaseException:
                    if f is not None:
                        try:
                            f.close()  # in memory: closing writes nothing
                        except Exception:
                            pass  # the original error is the one to report
                    tmp.unlink(missing_ok=True)
                    raise
            finally:
                lock.release()

    @staticmethod
    def _remove_leftovers(real: Path) -> None:
        """Working copies of writers that died mid-transaction (the lock is ours, so no live writer owns one)."""
        for p in real.parent.glob(f".{real.name}{TXN_MARK}*"):
            try:
                p.unlink()
            except OSError:
                pass

    # ------------------------------------------------------------------ writing
    def begin_run(self, meta: dict) -> str:
        run_id = meta.get("run_id") or new_run_id()
        with self._open("a") as f:
            if run_id in f["runs"]:
                raise StoreError(f"store {self.path} has a run {run_id!r} already")
            g = f["runs"].create_group(run_id)
            for k, v in meta.items():
                g.attrs[k] = _attr(v)
            g.attrs["run_id"] = run_id
            g.attrs["status"] = "running"
            g.attrs["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            g.attrs["started_ns"] = time.time_ns()  # orders runs that start within the same second
            for k, v in writer_identity().items():
                g.attrs[k] = v
            g.create_dataset("cell_ids", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype())
        return run_id

    def _run_group(self, f: h5py.File, run_id: str) -> h5py.Group:
        if run_id not in f["runs"]:
            raise StoreError(f"store {self.path} has no run {run_id!r}")
        g = f["runs"][run_id]
        me = writer_identity()
        if int(g.attrs.get("writer_pid", 0)) != me["writer_pid"] or _decode(g.attrs.get("writer_host", "")) != me["writer_host"]:
            for k, v in me.items():  # a run continued by another process (resumed) is attributed to it
                g.attrs[k] = v
        return g

    def reopen_run(self, run_id: str, extra: Optional[dict] = None) -> None:
        """Mark an unfinished run running again (`--resume`); counts how often it was resumed."""
        with self._open("a") as f:
            g = self._run_group(f, run_id)
            g.attrs["status"] = "running"
            g.attrs["resumed"] = int(g.attrs.get("resumed", 0)) + 1
            for k, v in (extra or {}).items():
                g.attrs[k] = _attr(v)

    def add_cell_to_run(self, run_id: str, cell_id: str) -> None:
        with self._open("a") as f:
            ds = self._run_group(f, run_id)["cell_ids"]
            ds.resize((ds.shape[0] + 1,))
            ds[-1] = cell_id

    def finish_run(self, run_id: str, status: str, extra: Optional[dict] = None) -> None:
        with self._open("a") as f:
            g = self._run_group(f, run_id)
            g.attrs["status"] = status
            g.attrs["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            for k, v in (extra or {}).items():
                g.attrs[k] = _attr(v)

    @staticmethod
    def _validate(cell: CellResult) -> dict:
        """The arrays to write with their dtypes; ValueError for a cell the schema cannot hold."""
        missing = set(SAMPLE_ARRAYS) - set(cell.arrays)
        if missing:
            raise ValueError(f"cell {cell.cell_id} lacks arrays {sorted(missing)}")
        unknown = set(cell.arrays) - set(SAMPLE_ARRAYS) - set(OPTIONAL_ARRAYS)
        if unknown:
            raise ValueError(f"cell {cell.cell_id} has arrays the schema does not know: {sorted(unknown)}")
        if cell.cell_id.startswith(TMP_PREFIX) or "/" in cell.cell_id or not cell.cell_id:
            raise ValueError(f"cell id {cell.cell_id!r} is not a valid cell name")
        n = len(cell.arrays["sample_id"])
        dtypes = {**SAMPLE_ARRAYS, **{k: v for k, v in OPTIONAL_ARRAYS.items() if k in cell.arrays}}
        for name in dtypes:
            if len(cell.arrays[name]) != n:
                raise ValueError(f"cell {cell.cell_id}: array {name} has {len(cell.arrays[name])} rows, expected {n}")
        return dtypes

    def write_cell(self, cell: CellResult, run_id: Optional[str] = None) -> None:
        """Write a whole cell (in one transaction; nothing if the store has it already). With `run_id`, also append
        it to that run's cell list in the same transaction."""
        dtypes = self._validate(cell)
        with self._open("a") as f:
            cells = f["cells"]
            if cell.cell_id not in cells:
                for stale in [k for k in cells if k.startswith(TMP_PREFIX)]:
                    del cells[stale]
                g = cells.create_group(cell.cell_id)
                g.attrs["config"] = json.dumps(cell.config, sort_keys=True)
                for k, v in {**cell.config, **cell.attrs}.items():
                    g.attrs[k] = _attr(v)
                g.attrs["unreliable"] = bool(cell.unreliable)
                g.attrs["unreliable_reason"] = cell.unreliable_reason
                self._mark_minor(f, 2 if set(OPTIONAL_ARRAYS) & set(cell.arrays) else 1)
                for name, dtype in dtypes.items():
                    arr = cell.arrays[name]
                    if dtype == "str":
                        g.create_dataset(name, data=np.asarray(arr, dtype=object), dtype=h5py.string_dtype())
                    else:
                        g.create_dataset(name, data=np.asarray(arr, dtype=dtype))
                s = g.create_group("summary")
                for k, v in cell.summary.items():
                    s.attrs[k] = _attr(v)
            if run_id is not None:
                self.add_cell_to_run(run_id, cell.cell_id)

    @staticmethod
    def _mark_minor(f: h5py.File, minor: int) -> None:
        """An older store that receives fields of a newer minor version says so (older readers ignore them)."""
        if int(f.attrs.get("schema_minor", 0)) < minor:
            f.attrs["schema_minor"] = minor

    def flag_cell(self, cell_id: str, reasons: list[str]) -> None:
        """Mark a stored cell unreliable, adding `reasons` to the ones it already has (no duplicates)."""
        if not reasons:
            return
        with self._open("a") as f:
            if cell_id not in f["cells"]:
                raise StoreError(f"store {self.path} has no cell {cell_id!r}")
            g = f["cells"][cell_id]
            old = [r for r in str(_decode(g.attrs.get("unreliable_reason", ""))).split("; ") if r]
            merged = old + [r for r in reasons if r not in old]
            g.attrs["unreliable_reason"] = "; ".join(merged)
            g.attrs["unreliable"] = True
            self._mark_minor(f, 1)

    # ------------------------------------------------------------------ reading
    def has_cell(self, cell_id: str) -> bool:
        if self._own_transaction() is None and not self.path.exists():
            return False
        with self._open("r") as f:
            return cell_id in f["cells"] and not cell_id.startswith(TMP_PREFIX)

    def cell_ids(self) -> set[str]:
        """The ids of every stored cell (one read of the store)."""
        if self._own_transaction() is None and not self.path.exists():
            return set()
        with self._open("r") as f:
            return {c for c in f["cells"] if not c.startswith(TMP_PREFIX)}

    def runs(self) -> list[dict]:
        """Every run's provenance, oldest first."""
        with self._open("r") as f:
            out = []
            for run_id, g in f["runs"].items():
                meta = {k: _decode(v) for k, v in g.attrs.items()}
                meta["cell_ids"] = [c.decode() if isinstance(c, bytes) else c for c in g["cell_ids"][()]]
                out.append(meta)
        return sorted(out, key=lambda m: (m.get("started", ""), int(m.get("started_ns", 0)), m["run_id"]))

    def run(self, run_id: Optional[str] = None) -> dict:
        runs = self.runs()
        if not runs:
            raise StoreError(f"store {self.path} holds no runs")
        if run_id is None:
            return runs[-1]
        for meta in runs:
            if meta["run_id"] == run_id or meta["run_id"].startswith(run_id):
                return meta
        raise StoreError(f"store {self.path} has no run {run_id!r}")

    def read_cells(self, cell_ids: Optional[list[str]] = None, arrays: bool = True) -> list[CellResult]:
        with self._open("r") as f:
            cells = f["cells"]
            ids = [c for c in (cell_ids if cell_ids is not None else list(cells)) if not c.startswith(TMP_PREFIX)]
            out = []
            for cid in ids:
                if cid not in cells:
                    raise StoreError(f"store {self.path} has no cell {cid!r}")
                g = cells[cid]
                attrs = {k: _decode(v) for k, v in g.attrs.items()}
                config = json.loads(attrs.pop("config"))
                unreliable = bool(attrs.pop("unreliable", False))  # 1.0 stores: no checks stored, reliable
                reason = str(attrs.pop("unreliable_reason", ""))
                data = {}
                if arrays:
                    for name in [*SAMPLE_ARRAYS, *(k for k in OPTIONAL_ARRAYS if k in g)]:
                        v = g[name][()]
                        data[name] = np.asarray([s.decode() if isinstance(s, bytes) else s for s in v], dtype=object) if v.dtype == object else v
                summary = {k: _decode(v) for k, v in g["summary"].attrs.items()}
                out.append(CellResult(cid, config, data, summary, attrs, unreliable, reason))
        return out

    # ------------------------------------------------------------------ verification
    def verify(self) -> VerifyReport:
        """Check the whole store without changing it: schema, every cell (arrays, lengths, summary, id = hash of its
        config), runs' cell lists, runs left `running` by a dead writer, leftovers of killed writers.

        A missing store or one of a newer schema raises StoreError; a file that cannot be opened as a store is
        reported as a problem."""
        rep = VerifyReport(self.path)
        if not self.path.exists():
            raise StoreError(f"store {self.path} does not exist")
        try:
            with self._read() as f:
                self._verify_open(f, rep)
        except SchemaTooNewError:
            raise
        except StoreError as e:
            rep.problems.append(str(e))
        real = self._real()
        with _writers_paused(real) as paused:
            if not paused:
                rep.notes.append(f"a write is in progress: the lock is held by {_describe_holder(lock_holder(real))}")
            else:
                for p in sorted(real.parent.glob(f".{real.name}{TXN_MARK}*")):
                    rep.warnings.append(f"leftover working copy {p.name} of a killed writer (ignored by readers; the "
                                        "next write removes it)")
        return rep

    def _verify_open(self, f: h5py.File, rep: VerifyReport) -> None:
        minor = int(f.attrs.get("schema_minor", 0))
        rep.schema = f"v{int(f.attrs['schema_version'])}.{minor}"
        if minor > SCHEMA_MINOR:
            rep.warnings.append(f"schema {rep.schema} is newer than this facebench's v{SCHEMA_VERSION}.{SCHEMA_MINOR}: "
                                "fields it added are not checked")
        known = set(SAMPLE_ARRAYS) | set(OPTIONAL_ARRAYS) | {"summary"}
        cell_names = set()
        for cid in list(f["cells"]):
            if cid.startswith(TMP_PREFIX):
                rep.warnings.append(f"leftover half-written cell group cells/{cid} (ignored by readers; the next cell "
                                    "write removes it)")
                continue
            try:
                self._verify_cell(cid, f["cells"][cid], known, minor, rep)
                cell_names.add(cid)
            except (OSError, KeyError, RuntimeError, ValueError, TypeError) as e:
                rep.problems.append(f"cell {cid}: unreadable ({_first_line(e)})")
        for run_id in list(f["runs"]):
            try:
                g = f["runs"][run_id]
                meta = {k: _decode(v) for k, v in g.attrs.items()}
                status = str(meta.get("status", ""))
                rep.runs_by_status[status or "(none)"] += 1
                if status not in RUN_STATUSES:
                    rep.problems.append(f"run {run_id}: status {status!r} is not one of {', '.join(RUN_STATUSES)}")
                if "cell_ids" not in g:
                    rep.problems.append(f"run {run_id}: no cell_ids dataset")
                    continue
                listed = [c.decode() if isinstance(c, bytes) else str(c) for c in g["cell_ids"][()]]
                absent = [c for c in dict.fromkeys(listed) if c not in cell_names]
                if absent:
                    rep.problems.append(f"run {run_id}: lists {len(absent)} cell(s) the store lacks or cannot read "
                                        f"({', '.join(absent[:3])}{', ...' if len(absent) > 3 else ''})")
                if status == "running":
                    state = writer_state(meta)
                    who = f"pid {meta.get('writer_pid')} on {meta.get('writer_host')}"
                    if state == "gone":
                        rep.warnings.append(f"run {run_id} is marked running but its writer ({who}) is gone: it was killed "
                                            f"or crashed after {len(listed)} cell(s); those are kept")
                    elif state == "alive":
                        rep.notes.append(f"run {run_id} is in progress ({who}, {len(listed)} cell(s) so far)")
                    elif meta.get("writer_pid"):
                        rep.warnings.append(f"run {run_id} is marked running by {who}; whether that writer is alive "
                                            "cannot be checked from this host")
                    else:
                        rep.warnings.append(f"run {run_id} is marked running; its writer was not recorded (an older "
                                            "facebench), so whether it is alive is unknown")
            except (OSError, KeyError, RuntimeError, ValueError, TypeError) as e:
                rep.problems.append(f"run {run_id}: unreadable ({_first_line(e)})")

    @staticmethod
    def _verify_cell(cid: str, g, known: set, minor: int, rep: VerifyReport) -> None:
        if not isinstance(g, h5py.Group):
            rep.problems.append(f"cell {cid}: not a group")
            return
        bad = []
        raw = g.attrs.get("config")
        config: dict = {}
        if raw is None:
            bad.append("no config attribute")
        else:
            config = json.loads(_decode(raw))
            if cell_id_of(config) != cid:
                bad.append(f"its config hashes to {cell_id_of(config)}, not to its id")
        lengths = {}
        for name in g:
            if name == "summary":
                continue
            ds = g[name]
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
                bad.append(f"{name} is not a 1-D dataset")
                continue
            ds[()]  # reads every byte: damaged data raises here
            lengths[name] = ds.shape[0]
            if name not in known and minor <= SCHEMA_MINOR:
                bad.append(f"unknown dataset {name}")
        missing = [a for a in SAMPLE_ARRAYS if a not in g]
        if missing:
            bad.append(f"missing arrays {', '.join(missing)}")
        if len(set(lengths.values())) > 1:
            bad.append("arrays of unequal lengths (" + ", ".join(f"{k} {v}" for k, v in sorted(lengths.items())) + ")")
        summary = g.get("summary")
        if not isinstance(summary, h5py.Group):
            bad.append("no summary")
        elif "n" in summary.attrs and lengths and int(summary.attrs["n"]) != max(lengths.values()):
            bad.append(f"summary n = {int(summary.attrs['n'])} but {max(lengths.values())} samples stored")
        if bad:
            rep.problems.append(f"cell {cid}: " + "; ".join(bad))
            return
        n = lengths.get("sample_id", 0)
        kind = (str(config.get("model", "?")), str(config.get("goal", "?")), str(config.get("attack", "?")))
        counts = rep.cells_by_kind.setdefault(kind, [0, 0])
        counts[0] += 1
        counts[1] += n
        rep.cells += 1
        rep.samples += n

