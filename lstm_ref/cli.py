"""``lstm-ref`` / ``python -m lstm_ref``: the command line."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lstm-ref", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="run goldens + live sweep, write reports/parity.{md,json,html}")
    rep.add_argument("--out", default="reports")
    rep.add_argument("--no-live", action="store_true", help="goldens only (no oracle workers)")
    rep.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "report":
        from .report import main as report_main

        return report_main(args.out, with_live=not args.no_live, progress=not args.no_progress)
    return 2


if __name__ == "__main__":
    sys.exit(main())
