"""``lstm-ref report``: the goldens and the live sweep, written as
reports/parity.{md,json,html}."""

from ..report import main as report_main
from ._common import EPILOG, UsageError, user_path

NAME = "report"


def add_parser(sub):
    rep = sub.add_parser(
        "report", help="run goldens and the live sweep; write reports/parity.{md,json,html}", epilog=EPILOG
    )
    rep.add_argument("--out", default="reports", help="directory for the report files")
    rep.add_argument("--no-live", action="store_true", help="goldens only (no oracle workers)")
    rep.add_argument("--no-progress", action="store_true", help="no progress bar")
    rep.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def run(args):

    out = user_path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out}: is a file; give a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot create the directory ({exc.strerror})") from None
    return report_main(out, with_live=not args.no_live, progress=not args.no_progress)
