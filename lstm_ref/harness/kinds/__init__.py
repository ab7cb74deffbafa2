"""One slice per kind: its record, with its Hypothesis strategy, the
report's sweep, its error inputs and its golden cases beside it.

The registry that lists them is ``lstm_ref/harness/records.py``.
"""
