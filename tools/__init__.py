"""Tools that measure and probe the suite, run by hand or by `make`:
``mutants`` (``make mutants``), ``measure_tolerances`` and
``measure_tflite`` (the measurements behind lstm_ref/harness/tolerances.py).
Not tests: pytest does not collect them."""
