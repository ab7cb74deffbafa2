"""``lstm-ref`` / ``python -m lstm_ref``: the command line.

One module per command, each with ``add_parser(subparsers)`` and
``run(args) -> int``; what they share is in ``_common``.  This module builds
the top parser, dispatches, and turns errors into exit codes.

Exit codes follow the Unix tradition (and pytest's): 0 when every checked
layer or case is within tolerance, 1 when any is not, 2 for a usage or
input error (a short message on stderr naming the culprit; the traceback
only under ``--debug``), 3 when a framework worker crashed or hung, or
lstm-ref itself failed (a bug), which is neither a pass nor a parity failure.
"""

import os
import re
import sys
import traceback

from ... import __version__, platform
from ...errors import LstmRefError
from ..oracles.client import OracleError, OracleInputError, OracleUnavailable
from . import check, convert, diagnose, doctor, record_platform, replay, report, tflite_sweep
from ._common import EPILOG, EXIT_INTERNAL, EXIT_USAGE, UsageError, _Parser, one_line

# In the order `lstm-ref --help` lists them.
COMMANDS = (check, convert, diagnose, record_platform, replay, tflite_sweep, report, doctor)


def build_parser():

    parser = _Parser(
        prog="lstm-ref",
        description="Compare LSTMs with a NumPy reference that reproduces TensorFlow step by step.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"lstm-ref {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's start-up lines stay off the terminal
    parser = build_parser()
    args = parser.parse_args(argv)

    try:
        if getattr(args, "platform", None):
            platform.use(args.platform)
        return {command.NAME: command for command in COMMANDS}[args.command].run(args)
    except (LstmRefError, OracleInputError, OracleUnavailable, UsageError) as exc:
        _traceback(args)
        print(f"lstm-ref {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OracleError as exc:
        _traceback(args)
        print(
            f"lstm-ref {args.command}: error: a framework worker failed: {_worker_reason(exc)}"
            + ("" if getattr(args, "debug", False) else " (rerun with --debug for its traceback)"),
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug of lstm-ref's own: neither a pass nor a parity failure
        _traceback(args)
        print(
            f"lstm-ref {args.command}: internal error: {type(exc).__name__}: {one_line(exc)} (a bug in lstm-ref"
            + ("" if getattr(args, "debug", False) else "; rerun with --debug for the traceback")
            + ")",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _traceback(args):
    """Under ``--debug``, the traceback (and a worker's, inside its message)
    on stderr; the exit code stays the error's own (2 or 3), never 1."""
    if getattr(args, "debug", False):
        traceback.print_exc(file=sys.stderr)


def _worker_reason(exc):
    """A worker failure in one line: what failed and, from the worker's
    traceback, the exception it ended with (the first line alone, "oracle
    'keras3' failed on 'model_lstms':", says nothing)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    head = lines[0].rstrip(":")
    raised = [line for line in lines[1:] if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", line)]
    last = (
        raised[-1]
        if raised
        else next((line for line in reversed(lines[1:]) if not line.startswith(("File ", "^", "~"))), "")
    )
    last = last if len(last) <= 300 else last[:297] + "..."
    return f"{head}: {last}" if last else head
