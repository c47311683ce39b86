"""Atomic output files, and the one place scratch directories are made.

Files: write a temporary file in the destination directory, then ``os.replace``. A reader (or a
crashed writer) never sees a half-written file: the destination either keeps its old content or
has the complete new one.

Directories: :func:`run_directory` makes a fresh directory under ``$ZOHW_CACHE/runs`` for the
files of one run (a simulation's arguments, log and result), kept for a day so that a failure
can be looked at, then removed by a later run; :func:`scratch_directory` is one removed on exit.
An interrupted command removes the run directories it made (:func:`discard_run_directories`)
and the outputs it had written (:func:`discard_outputs`: the files under the paths its options
named, checked by :func:`check_output_path`): nothing is left of a run that did not finish.
"""

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["atomic_open", "write_text_atomic", "write_bytes_atomic", "write_json_atomic",
           "save_npz_atomic", "run_directory", "scratch_directory", "RUN_MAX_AGE_S",
           "check_output_path", "discard_run_directories", "discard_outputs", "begin_command"]

#: Run directories older than this are removed by the next :func:`run_directory`.
RUN_MAX_AGE_S = 24 * 3600

#: Run directories made by the current command (removed if it is interrupted).
_made_runs = []
#: The current command's declared outputs (checked by :func:`check_output_path`): absolute
#: paths; the files written under them; the directories made for them.
_declared = []
_written = []
_made_dirs = []


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Open a temporary file next to ``path``; on a clean exit it replaces ``path``.

    The parent directory is created if needed. On an exception the temporary file is removed
    and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if _is_declared(path):          # noted first: an interrupt may come right after
            _written.append(path.absolute())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path, data: bytes):
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text_atomic(path, text: str):
    # newline="" keeps the text byte-exact (no platform newline translation).
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def write_json_atomic(path, obj, *, indent=2, sort_keys=True):
    """Deterministic JSON (sorted keys, fixed indent, trailing newline)."""
    write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


def save_npz_atomic(path, **arrays):
    """``numpy.savez`` to ``path`` atomically (``path`` is used as given: no ``.npz`` appended)."""
    import numpy as np

    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def _runs_root():
    from zohw.cache import cache_root

    runs = cache_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    return runs


def _remove_old_runs(runs):
    now = time.time()
    with contextlib.suppress(OSError):
        for d in runs.iterdir():
            with contextlib.suppress(OSError):
                if now - d.stat().st_mtime > RUN_MAX_AGE_S:
                    shutil.rmtree(d, ignore_errors=True)


def run_directory(prefix) -> Path:
    """A fresh directory ``$ZOHW_CACHE/runs/<prefix>-XXXX`` (kept for a day)."""
    runs = _runs_root()
    _remove_old_runs(runs)
    path = Path(tempfile.mkdtemp(dir=runs, prefix=f"{prefix}-"))
    _made_runs.append(path)
    return path


def discard_run_directories():
    """Remove every run directory the current command made (an interrupted command's)."""
    while _made_runs:
        shutil.rmtree(_made_runs.pop(), ignore_errors=True)


def begin_command():
    """Forget the previous command's run directories and outputs (:func:`zohw.cli.main`)."""
    _made_runs.clear()
    _declared.clear()
    _written.clear()
    _made_dirs.clear()


def _is_declared(path):
    p = path.absolute()
    return any(p == d or d in p.parents for d in _declared)


def discard_outputs():
    """Remove what an interrupted command wrote of its outputs — every file written atomically
    to (or under) a path given to :func:`check_output_path` — and the directories made for
    them if they are left empty: an interrupted command leaves no partial result."""
    while _written:
        with contextlib.suppress(OSError):
            _written.pop().unlink()
    for d in sorted(set(_made_dirs), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()                   # only if empty
    _made_dirs.clear()


def _declare(p, directory):
    """Note an output path and the directories that do not exist yet on its way."""
    p = p.absolute()
    _declared.append(p)
    missing = []
    d = p if directory else p.parent
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    _made_dirs.extend(missing)


@contextlib.contextmanager
def scratch_directory(prefix):
    """A fresh directory under ``$ZOHW_CACHE/runs``, removed with its content on exit."""
    path = Path(tempfile.mkdtemp(dir=_runs_root(), prefix=f"{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _usage_error(message):
    from zohw.errors import UsageError

    return UsageError(message)


def _check_writable_dir(option, directory, what):
    """``directory`` exists, is a directory, and a file can be created in it (a real probe:
    ``os.access`` says yes to root even where the file system refuses)."""
    if not directory.exists():
        raise _usage_error(f"{option}: {what} {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise _usage_error(f"{option}: {what} {str(directory)!r} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise _usage_error(f"{option}: {what} {str(directory)!r} is not writable")
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".zohw-probe-")
    except OSError:
        raise _usage_error(f"{option}: {what} {str(directory)!r} is not writable") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_output_path(option, path, *, suffix=None, directory=False, create_parents=False):
    """Check, before any work starts, that ``path`` (the value of the option named ``option``,
    e.g. ``"--json"``) can be written; raise :class:`~zohw.errors.UsageError` with one line
    naming the option and the problem otherwise.

    A file path (``directory=False``) must not be empty, not be a directory, end in ``suffix``
    if given (e.g. ``".png"``), and its parent must be an existing writable directory. An
    output directory (``directory=True``) must not be an existing file. With
    ``create_parents`` the missing part of the path will be made: the nearest existing
    ancestor must be a writable directory. Returns ``path`` as a :class:`Path`.
    """
    if path is None or str(path).strip() == "":
        raise _usage_error(f"{option} must be a path, not an empty string")
    p = Path(path)
    if directory:
        if p.exists() and not p.is_dir():
            raise _usage_error(f"{option}: {str(p)!r} exists and is not a directory")
    else:
        if suffix is not None and not p.name.lower().endswith(suffix):
            raise _usage_error(f"{option} must be a {suffix} file, not {str(path)!r}")
        if p.is_dir():
            raise _usage_error(f"{option} must be a file path, not the directory {str(path)!r}")
    parent = p.absolute().parent
    if p.exists() and directory:
        _check_writable_dir(option, p, "directory")
    elif create_parents:
        ancestor = parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        _check_writable_dir(option, ancestor, "directory")
    else:
        _check_writable_dir(option, parent, "parent directory")
    _declare(p, directory)
    return p
