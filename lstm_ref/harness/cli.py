"""Compatibility: the command line lives in :mod:`lstm_ref.harness.commands`
(one module per command under ``lstm_ref/harness/commands/``); this module
keeps ``lstm_ref.harness.cli.main`` and ``build_parser`` importable."""

import sys

from .commands import build_parser, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
