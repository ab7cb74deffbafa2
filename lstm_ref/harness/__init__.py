"""The harness: everything that talks to a framework or judges a result.

The core (``lstm_ref`` itself: references, runner, activations, dtypes,
errors, trace, case) needs NumPy only.  This package holds the comparison
and the tolerance table, the kind records, the oracle workers and their
client, the golden store, the report, ``check``, the benchmarks and the
Hypothesis strategies.  Importing it does not import a framework: each
module that needs one imports it where it is used, and the workers run in
processes of their own.
"""
