"""``lstm-ref record-platform`` and ``lstm-ref replay``: record what the
frameworks compute on this CPU, and judge the reference on a recording from
any CPU (``lstm_ref/harness/platforms.py``)."""

import json
import sys

EXIT_PASS, EXIT_FAIL = 0, 1


def add_parsers(sub, epilog):
    rec = sub.add_parser(
        "record-platform", help="record what the frameworks compute on this CPU (for the suite to replay elsewhere)",
        description="Run every record's sweep case, every golden case and the float16 activation tables through "
                    "the real frameworks on this machine, and write them with the CPU's flags, TF_ENABLE_ONEDNN_OPTS "
                    "and the platform profile they decide, checksummed.  Put the folder under fixtures/platforms/ "
                    "and `make test` replays it on any machine.", epilog=epilog)
    rec.add_argument("out", metavar="OUT", help="a new (or empty) folder, e.g. fixtures/platforms/my-runner")
    rec.add_argument("--debug", action="store_true", help="show tracebacks and workers' stderr on errors")
    rep = sub.add_parser(
        "replay", help="judge the reference on a recording from another CPU (no framework needed)",
        description="Compare the reference, under the recording's platform profile, with every recorded case and "
                    "activation table, by the suite's one comparison and tolerance table.", epilog=epilog)
    rep.add_argument("recording", metavar="DIR", help="a recording folder (fixtures/platforms/<name>)")
    rep.add_argument("--json", metavar="PATH", help="also write the verdicts as JSON to PATH")
    rep.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def record_command(args, user_path):
    from . import platforms
    from .check import open_pool

    out = user_path(args.out)
    pool = open_pool()
    try:
        recording = platforms.record(out, pool, progress=platforms.print_progress)
    finally:
        pool.close()
    refused = recording.refused()
    print(f"recorded {len(recording.case_names())} cases on {recording.cpu['cpu']} (profile {recording.profile}) "
          f"into {out}")
    if refused:
        print(f"{len(refused)} case(s) refused or crashed a framework: see {out / 'refused.json'} (the replay fails "
              "on them)", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_PASS


def replay_command(args, user_path, json_target):
    from . import platforms
    from .replay import replay

    path = json_target(args)
    recording = platforms.load(user_path(args.recording))
    platforms.check_versions(recording, platforms.golden_versions())
    rows = replay(recording, progress=lambda done, total, name: None)
    failed = [r for r in rows if not r["passed"]]
    for row in failed:
        print(f"FAIL {row['name']}: {row['detail']}", file=sys.stderr)
    print(f"{recording.name} ({recording.cpu.get('cpu')}, profile {recording.profile}): "
          f"{len(rows) - len(failed)}/{len(rows)} within the suite's criteria")
    if path:
        path.write_text(json.dumps({"recording": recording.name, "profile": str(recording.profile),
                                    "rows": rows}, indent=1) + "\n")
    return EXIT_FAIL if failed else EXIT_PASS
