"""What every ``lstm-ref`` command shares: exit codes, epilogs, the parser
and its argument types, and the path and JSON helpers."""

import argparse
import math
import os
from pathlib import Path

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

EPILOG = """exit codes:
  0  every checked layer (or case) is within tolerance
  1  at least one is not: a parity failure
  2  usage or input error (or a framework not installed): a short message names the culprit
     (--debug shows the traceback)
  3  a framework worker crashed or hung (its stderr is shown under --debug), or lstm-ref failed (a bug)
"""

CONVERT_EPILOG = """exit codes:
  0  written (and, for --to onnx from a Keras model, each chain run in ONNX Runtime within tolerance of the source)
  1  written, but a chain run in ONNX Runtime is not within tolerance of the source: a parity failure
  2  usage or input error, or an LSTM the target cannot express: a short message names it
  3  a framework worker crashed or hung (its stderr is shown under --debug), or lstm-ref failed (a bug)
"""

DRAWN = {"batch": 2, "time": 7, "seed": 0}

ARTIFACTS = ("torch", "onnxruntime")  # the workers that open .pt and .onnx files (model_format)


class UsageError(ValueError):
    """A command line that cannot be run as given."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        """One line, not the whole usage block: the culprit and where help is."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help that states every default that is a value (not None, False or [])."""

    def _get_help_string(self, action):
        text = action.help or ""
        stated = not any(action.default is v for v in (None, False, argparse.SUPPRESS)) and action.default != []
        if (
            stated and "%(default)" not in text and "(default:" not in text
        ):  # a help that states its default in words keeps it once
            text += " (default: %(default)s)"
        return text


def _int_at_least(minimum, words):
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {words}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1, "at least 1")
seed = _int_at_least(0, "0 or more")


def one_line(exc):
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def user_path(text) -> Path:
    """A path as the user means it: relative to where they stand."""
    return (Path.cwd() / Path(text).expanduser()).resolve()


def refuse_unused(args, names, why):
    given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) not in (None, [])]
    if given:
        raise UsageError(
            f"{', '.join(given)} {'has' if len(given) == 1 else 'have'} no effect {why}; leave "
            f"{'it' if len(given) == 1 else 'them'} out"
        )


def json_target(args):
    """The --json path, checked before any work: its folder must exist."""
    if not args.json:
        return None
    path = user_path(args.json)
    if path.is_dir():
        raise UsageError(f"--json {args.json}: is a directory; give a file name")
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise UsageError(f"--json {args.json}: cannot write there (no writable directory {path.parent})")
    return path


def finite(value):
    """Strict JSON: NaN and infinities (a NaN mismatch, an infinite ratio)
    become the strings "nan", "inf", "-inf"; NumPy scalars become Python's."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
