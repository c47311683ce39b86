"""``python -m zohw.hw.formal [NAME ...] [-j JOBS] [--list]``: run the formal checks (all, or
those named), print one line each and exit 1 if any property is not proved or any twin is not
refuted."""

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from . import CHECKS, by_name, run, tools


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zohw.hw.formal", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help="checks to run (default: all)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="parallel solver jobs")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be a positive integer, not {args.jobs}")
    try:
        checks = [by_name(n) for n in args.names] if args.names else list(CHECKS)
    except KeyError as e:
        parser.error(e.args[0])
    if args.list:
        for c in checks:
            print(f"{c.name:52s} {c.mode:5s} depth {c.depth:3d}  expect {c.expect}: {c.property}")
        return 0
    try:
        tools()
    except FileNotFoundError as e:
        print(f"python -m zohw.hw.formal: error: {e}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    bad = 0
    with ThreadPoolExecutor(args.jobs) as pool:
        for c, r in zip(checks, pool.map(run, checks)):
            ok = r.status == c.expect
            bad += not ok
            verdict = {("pass", "pass"): "proved" if c.mode == "prove" else
                       ("covered" if c.mode == "cover" else f"holds to depth {c.depth}"),
                       ("fail", "fail"): "refuted (twin)"}.get((r.status, c.expect),
                                                               f"UNEXPECTED {r.status}")
            print(f"{'ok ' if ok else 'BAD'} {c.name:48s} {c.mode:5s} {c.depth:3d} "
                  f"{r.seconds:6.1f}s  {verdict}", flush=True)
            if not ok:
                print(r.log, file=sys.stderr)
    print(f"{len(checks) - bad} of {len(checks)} formal checks as expected in "
          f"{time.monotonic() - t0:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
