"""``python -m zohw.resources --readme README.md [--json docs/resources_default.json]``:
replace the text between ``<!-- resources:begin -->`` and ``<!-- resources:end -->`` in the
README with the table rendered from the stored JSON report (never typed by hand)."""

import argparse
import json
import sys

from .report import update_readme

DEFAULT_JSON = "docs/resources_default.json"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zohw.resources", description=__doc__)
    parser.add_argument("--readme", required=True, metavar="FILE")
    parser.add_argument("--json", default=DEFAULT_JSON, metavar="FILE",
                        help=f"report written by `zohw resources --json` (default {DEFAULT_JSON})")
    args = parser.parse_args(argv)
    try:
        with open(args.json, encoding="utf-8") as f:
            report = json.load(f)
        changed = update_readme(args.readme, report)
    except (OSError, ValueError) as exc:
        print(f"python -m zohw.resources: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.readme}: resources table {'updated' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
