"""``lstm-ref record-platform``: record what the frameworks compute on this
CPU, for the suite to replay on any CPU (``lstm_ref/harness/platforms.py``)."""

import sys

from .. import platforms
from ..check import open_pool
from ._common import EPILOG, EXIT_FAIL, EXIT_PASS, user_path

NAME = "record-platform"


def add_parser(sub):
    rec = sub.add_parser(
        "record-platform",
        help="record what the frameworks compute on this CPU (for the suite to replay elsewhere)",
        description="Run every record's sweep case, every golden case and the float16 activation tables through "
        "the real frameworks on this machine, and write them with the CPU's flags, TF_ENABLE_ONEDNN_OPTS "
        "and the platform profile they decide, checksummed.  Put the folder under fixtures/platforms/ "
        "and `make test` replays it on any machine.",
        epilog=EPILOG,
    )
    rec.add_argument("out", metavar="OUT", help="a new (or empty) folder, e.g. fixtures/platforms/my-runner")
    rec.add_argument("--debug", action="store_true", help="show tracebacks and workers' stderr on errors")


def run(args):

    out = user_path(args.out)
    pool = open_pool()
    try:
        recording = platforms.record(out, pool, progress=platforms.print_progress)
    finally:
        pool.close()
    refused = recording.refused()
    print(
        f"recorded {len(recording.case_names())} cases on {recording.cpu['cpu']} (profile {recording.profile}) "
        f"into {out}"
    )
    if refused:
        print(
            f"{len(refused)} case(s) refused or crashed a framework: see {out / 'refused.json'} (the replay fails "
            "on them)",
            file=sys.stderr,
        )
        return EXIT_FAIL
    return EXIT_PASS
