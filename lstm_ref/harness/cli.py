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
    chk = sub.add_parser("check", help="compare every LSTM layer of a saved model (or a TF1 checkpoint) with lstm_ref")
    chk.add_argument("model", help=".keras or .h5 file; or, with --scope, a SavedModel dir or a TF1 checkpoint")
    chk.add_argument("--input", help="x.npy fed to the model (default: random)")
    chk.add_argument("--batch", type=int, default=2)
    chk.add_argument("--time", type=int, default=7, help="steps of random input when the model leaves time open")
    chk.add_argument("--seed", type=int, default=0)
    chk.add_argument("--scope", help="checkpoint variable scope of the cell, e.g. rnn/lstm_cell")
    chk.add_argument("--kind", help="cell kind for a checkpoint, e.g. tf.compat.v1.nn.rnn_cell.LSTMCell")
    chk.add_argument("--config", help="cell constructor kwargs as JSON, for a checkpoint")
    args = parser.parse_args(argv)
    if args.command == "check":
        from .check import main as check_main

        return check_main(args)
    if args.command == "report":
        from .report import main as report_main

        return report_main(args.out, with_live=not args.no_live, progress=not args.no_progress)
    return 2


if __name__ == "__main__":
    sys.exit(main())
