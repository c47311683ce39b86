"""``zohw cache``: where zohw caches its builds and results (``$ZOHW_CACHE``, else
``~/.cache/zohw``), how big each kind is, and removing them.

Every entry carries a completion marker and a checksum of its content; a damaged one (a killed
build, a truncated file) is discarded and rebuilt on its next use with one warning line, so
clearing is never needed for correctness — only to free space.
"""

import sys

from zohw.cache import KINDS, cache_root, clear_cache, kind_usage
from zohw.errors import UsageError


def _size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"   # pragma: no cover


def register(subparsers):
    p = subparsers.add_parser("cache", help="show or clear zohw's cache ($ZOHW_CACHE)",
                              description=__doc__)
    sub = p.add_subparsers(dest="action", required=True, parser_class=type(p),
                           metavar="info|clear")
    info = sub.add_parser("info", help="size of each kind of cache entry",
                          description="Size and number of entries of each kind: "
                          + "; ".join(f"{k}: {v}" for k, v in KINDS.items()) + ".")
    info.set_defaults(func=run_info)
    clear = sub.add_parser("clear", help="remove cache entries",
                           description="Remove every cache entry, or those of one kind.")
    clear.add_argument("--kind", action="append", default=None, metavar="K",
                       help=f"only this kind (repeatable): {', '.join(KINDS)}")
    clear.set_defaults(func=run_clear)


def run_info(args):
    root = cache_root()
    rows = kind_usage(root)
    width = max(len(k) for k in KINDS)
    for kind, path, size, entries in rows:
        print(f"{kind:<{width}}  {_size(size):>9}  {entries:>5} entries  {path}")
    total = sum(r[2] for r in rows)
    print(f"cache {root}: {_size(total)} in {len(rows)} kinds (ZOHW_CACHE sets the root)",
          file=sys.stderr)
    return 0


def run_clear(args):
    kinds = args.kind or list(KINDS)
    for k in kinds:
        if k not in KINDS:
            raise UsageError(f"--kind must be one of {', '.join(KINDS)}, not {k!r}")
    root = cache_root()
    removed = clear_cache(kinds, root)
    for kind, path, size in removed:
        print(f"removed {path} ({_size(size)})")
    print(f"cache {root}: cleared {', '.join(kinds)}; freed "
          f"{_size(sum(r[2] for r in removed))}", file=sys.stderr)
    return 0
