"""``lstm-ref replay``: judge the reference on a recording from any CPU
(``lstm_ref/harness/platforms.py``), no framework needed."""

import json
import sys

from ...errors import FixtureError
from .. import platforms
from ..replay import replay
from ._common import EPILOG, EXIT_FAIL, EXIT_PASS, UsageError, json_target, user_path

NAME = "replay"


def add_parser(sub):
    rep = sub.add_parser(
        "replay",
        help="judge the reference on a recording from another CPU (no framework needed)",
        description="Compare the reference, under the recording's platform profile, with every recorded case and "
        "activation table, by the suite's one comparison and tolerance table.",
        epilog=EPILOG,
    )
    rep.add_argument("recording", metavar="DIR", help="a recording folder (fixtures/platforms/<name>)")
    rep.add_argument("--json", metavar="PATH", help="also write the verdicts as JSON to PATH")
    rep.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def run(args):

    path = json_target(args)
    recording = platforms.load(user_path(args.recording))
    try:
        expected = platforms.golden_versions()
    except FixtureError as exc:
        if (platforms.store.FIXTURES / platforms.store.MANIFEST).exists():
            raise  # a damaged golden: its own message names it
        raise UsageError(
            "replay checks the recording's framework versions against the goldens', and there are none at "
            f"{platforms.store.FIXTURES}: run it from a clone of lstm-parity, or set LSTM_PARITY_FIXTURES to a "
            f"clone's fixtures/ ({exc})"
        ) from None
    platforms.check_versions(recording, expected)
    rows = replay(recording, progress=lambda done, total, name: None)
    failed = [r for r in rows if not r["passed"]]
    for row in failed:
        print(f"FAIL {row['name']}: {row['detail']}", file=sys.stderr)
    print(
        f"{recording.name} ({recording.cpu.get('cpu')}, profile {recording.profile}): "
        f"{len(rows) - len(failed)}/{len(rows)} within the suite's criteria"
    )
    if path:
        path.write_text(
            json.dumps({"recording": recording.name, "profile": str(recording.profile), "rows": rows}, indent=1) + "\n"
        )
    return EXIT_FAIL if failed else EXIT_PASS
