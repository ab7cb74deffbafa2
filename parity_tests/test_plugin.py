"""The pytest plugin (``lstm_ref.harness.pytest_plugin``), used the way a
user uses it: the worked example in ``examples/numpy_port`` is copied out
of the tree and run by pytest in a subprocess, which finds the plugin
through its ``pytest11`` entry point; the marker, the option and the
missing-field failure run in-process under ``pytester``; the helpers'
refusals are a table.  No framework is needed.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_ref import from_config
from lstm_ref.case import Case, build_weights
from lstm_ref.errors import ConfigError, LstmRefError
from lstm_ref.harness import pytest_plugin, strategies
from lstm_ref.harness.pytest_plugin import cases, check_parity
from lstm_ref.harness.records import RECORDS

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "numpy_port"
FEW = settings(max_examples=5, deadline=None, database=None)


def keras_case():
    rng = np.random.default_rng(0)
    weights = build_weights(from_config("keras.layers.LSTM", {"units": 3}), rng, 3)
    return Case("keras.layers.LSTM", {"units": 3}, rng.standard_normal((2, 4, 3)).astype("float32"), weights)


NO_SHRINK = """from hypothesis import Phase, settings

settings.register_profile("no_shrink", phases=[Phase.explicit, Phase.reuse, Phase.generate])
"""


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """The example as its README runs it, on a copy outside this tree (so
    that no conftest of the project applies), with ten examples; without
    Hypothesis' shrink and explain phases, which take seconds and only
    simplify the failing case the note describes."""
    where = tmp_path_factory.mktemp("numpy_port")
    for name in ("port.py", "test_port.py"):
        shutil.copy(EXAMPLE / name, where / name)
    (where / "conftest.py").write_text(NO_SHRINK)
    # Nothing of this run's own pytest (xdist worker, addopts) or Hypothesis profile leaks in.
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "--hypothesis-seed=0",
            "--hypothesis-profile=no_shrink",
            "--lstm-parity-examples",
            "10",
        ],
        cwd=where,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_buggy_port_fails_with_the_note_at_step_0(example_run):
    out = example_run.stdout
    assert example_run.returncode == 1, out + example_run.stderr
    assert "test_port.py::test_port_matches_keras_lstm[buggy] FAILED" in out
    assert re.search(r"^lstm_ref \S+, tolerances .*float32 atol=2e-06", out, re.M), out
    assert "keras.layers.LSTM: the port differs from lstm_ref (compared h, c, final_h, final_c" in out
    assert "parity failed (float32, atol=2e-06, rtol=2e-06, rounding=16)" in out
    for field in ("h", "c"):
        assert re.search(rf"E\s+{field}: first divergence at step 0, row \d+, unit \d+: ref=", out), out
    assert "reproduce: lstm_ref.from_config('keras.layers.LSTM'" in out


def test_fixed_port_passes(example_run):
    assert "test_port.py::test_port_matches_keras_lstm[fixed] PASSED" in example_run.stdout, example_run.stdout


MISSING_FIELD = """
import numpy as np
import port
from lstm_ref import from_config
from lstm_ref.case import Case, build_weights


def drawn_case():
    rng = np.random.default_rng(0)
    weights = build_weights(from_config("keras.layers.LSTM", {"units": 3}), rng, 3)
    return Case("keras.layers.LSTM", {"units": 3}, rng.standard_normal((2, 4, 3)).astype("float32"), weights)


def test_port_without_final_c(assert_lstm_parity):
    case = drawn_case()
    outputs = port.lstm_forward_fixed(case.x, **case.weights)
    del outputs["final_c"]
    assert_lstm_parity(case, outputs)


def test_port_that_says_what_it_returns(assert_lstm_parity):
    case = drawn_case()
    outputs = port.lstm_forward(case.x, **case.weights)
    assert_lstm_parity(case, {"h": outputs["h"], "final_h": outputs["final_h"]}, fields=("h", "final_h"))
"""


def test_missing_field_fails_naming_it_and_fields_says_what_is_compared(pytester):
    shutil.copy(EXAMPLE / "port.py", pytester.path / "port.py")
    pytester.makepyfile(test_fields=MISSING_FIELD)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert (
        "AssertionError: keras.layers.LSTM: the port's outputs do not match the fields compared, "
        "['h', 'c', 'final_h', 'final_c']: missing ['final_c'].  A port that returns fewer fields names them"
    ) in out
    assert (
        "AssertionError: keras.layers.LSTM: the port differs from lstm_ref (compared h, final_h; not c, final_c;" in out
    )
    assert re.search(r"E\s+h: first divergence at step 0, row 0, unit 0", out)
    assert not re.search(r"E\s+c: first divergence", out)


MARKED = """
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from lstm_ref.case import Case

CALLS = {"marked": 0, "unmarked": 0}


@pytest.mark.lstm_parity
@settings(max_examples=50, database=None)
@given(st.integers())
def test_marked(x):
    CALLS["marked"] += 1


@settings(max_examples=50, database=None)
@given(st.integers())
def test_unmarked(x):
    CALLS["unmarked"] += 1


def test_zz_counts():
    assert CALLS["marked"] == 3 and CALLS["unmarked"] > 3, CALLS


CASE = Case("keras.layers.LSTM", {"units": 1}, np.ones((1, 2, 1), "float32"),
            {"kernel": np.ones((1, 4), "float32"), "recurrent_kernel": np.ones((1, 4), "float32"),
             "bias": np.zeros(4, "float32")})


@pytest.mark.lstm_parity(kind="keras.layers.LSTM")
def test_reference_fixture(assert_lstm_parity, lstm_reference):
    assert lstm_reference(CASE, oracle=True).h.dtype == np.float64
    assert_lstm_parity(CASE, dict(lstm_reference(CASE).fields))


@pytest.mark.lstm_parity(kind="tf_keras")
def test_case_of_another_kind(assert_lstm_parity, lstm_reference):
    assert_lstm_parity(CASE, dict(lstm_reference(CASE).fields))


@pytest.mark.lstm_parity(kind="keras")
def test_unknown_kind():
    pass


@pytest.mark.lstm_parity("keras3")
def test_positional_kind():
    pass
"""


def test_marker_option_and_header(pytester):
    pytester.makepyfile(test_marked=MARKED)
    result = pytester.runpytest("-p", "no:randomly", "--strict-markers", "--lstm-parity-examples", "3")
    result.assert_outcomes(passed=4, failed=3)
    out = result.stdout.str()
    assert re.search(
        r"^lstm_ref \S+, tolerances \(lstm_ref.harness.tolerances, per-kind overrides in records\): "
        r"float64 atol=2e-12 rtol=2e-12; float32 atol=2e-06 rtol=2e-06 \+16x own rounding; ",
        out,
        re.M,
    ), out
    assert (
        "ConfigError: this test is marked lstm_parity(kind='tf_keras.layers.LSTM') "
        "but the case is of 'keras.layers.LSTM'"
    ) in out
    assert "ConfigError: unknown kind 'keras'; expected a record id ['keras3', " in out
    assert "ConfigError: the lstm_parity marker takes kind= only, got Mark(name='lstm_parity', args=('keras3',)" in out
    assert pytester.runpytest("--lstm-parity-examples", "0").ret == pytest.ExitCode.USAGE_ERROR


def test_plugin_imports_no_framework_and_no_hypothesis():
    """The plugin is loaded by every pytest run where lstm-parity is
    installed: it must import neither a framework nor Hypothesis (a test
    dependency the package does not require)."""
    code = (
        "import sys, lstm_ref.harness.pytest_plugin; "
        "print(sorted(m for m in ('tensorflow', 'torch', 'keras', 'onnxruntime', 'hypothesis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("record", RECORDS, ids=[r.id for r in RECORDS])
def test_reference_is_its_own_port_for_every_kind(record):
    """Every kind's cases pass against the reference's own trace, in full
    and for a subset of fields: the fields contract holds for each kind."""

    @FEW
    @given(case=cases(record.id, dtype="float32", max_time=6))
    def check(case):
        assert case.reference().policy.name == "float32" and case.x.shape[1] <= 6
        trace = case.run()
        check_parity(case, dict(trace.fields))
        check_parity(case, {"final_h": trace.final_h}, fields=["final_h"])

    check()


@FEW
@given(
    case=cases(
        "torch",
        config={"input_size": 3, "hidden_size": st.integers(1, 3), "bidirectional": True},
        masked=True,
        initial_state=False,
        max_batch=2,
    )
)
def test_fixed_config_cases_keep_the_config_and_the_constraints(case):
    assert case.config["input_size"] == 3 and case.config["bidirectional"] is True
    assert case.mask is not None and not case.initial_state and case.x.shape[0] <= 2


@FEW
@given(case=cases("keras3", masked=False, initial_state=True))
def test_record_cases_keep_the_constraints(case):
    assert case.mask is None and set(case.initial_state) == {"h0", "c0"}


def test_strategy_building_blocks_are_exposed():
    assert (pytest_plugin.gate_blocks, pytest_plugin.masks, pytest_plugin.initial_states) == (
        strategies.gate_blocks,
        strategies.masks,
        strategies.initial_states,
    )
    with pytest.raises(AttributeError, match="has no attribute 'stacked_run'"):
        pytest_plugin.stacked_run  # noqa: B018 - the attribute access is what raises


def _outputs():
    return dict(keras_case().run().fields)


# (id, call, expected exception, message pattern)
ERROR_INPUTS = [
    (
        "unknown-kind",
        lambda: cases("keras"),
        ConfigError,
        r"unknown kind 'keras'; expected a record id \['keras3', .*'keras.layers.LSTM'",
    ),
    ("config-not-dict", lambda: cases("keras3", config=[("units", 2)]), ConfigError, r"config must be a dict"),
    ("unknown-dtype", lambda: cases("keras3", dtype="bfloat16"), ConfigError, r"bfloat16"),
    ("max-time-0", lambda: cases("keras3", max_time=0), ConfigError, r"max_time must be a positive integer, got 0"),
    ("masked-not-bool", lambda: cases("keras3", masked="no"), ConfigError, r"masked must be True, False or None"),
    (
        "unknown-field",
        lambda: check_parity(keras_case(), _outputs(), fields=("h", "x")),
        LstmRefError,
        r"fields must be a non-empty tuple drawn from \('h', 'c', 'final_h', 'final_c'\)",
    ),
    ("no-fields", lambda: check_parity(keras_case(), _outputs(), fields=()), LstmRefError, r"non-empty"),
    (
        "outputs-not-dict",
        lambda: check_parity(keras_case(), list(_outputs().values())),
        LstmRefError,
        r"outputs must be a dict",
    ),
    (
        "misspelt-output",
        lambda: check_parity(keras_case(), {k.replace("_h", "_H"): v for k, v in _outputs().items()}),
        AssertionError,
        r"missing \['final_h'\]; unexpected \['final_H'\]",
    ),
    (
        "output-not-in-fields",
        lambda: check_parity(keras_case(), _outputs(), fields=("h",)),
        AssertionError,
        r"unexpected \['c', 'final_c', 'final_h'\]",
    ),
]


@pytest.mark.parametrize(
    "call, exception, pattern", [row[1:] for row in ERROR_INPUTS], ids=[row[0] for row in ERROR_INPUTS]
)
def test_bad_use_is_refused(call, exception, pattern):
    with pytest.raises(exception, match=pattern):
        call()


def test_the_plugin_page_example_runs_as_a_user_runs_it(tmp_path):
    """docs/plugin.md's test, copied out of the tree and run by pytest: the
    plugin is found by its entry point, the snippet is complete (its
    imports, the port's dict keyed by the output fields) and it passes."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "plugin.md").read_text()
    source = page.split("```python plugin-test\n", 1)[1].split("```", 1)[0]
    (tmp_path / "test_my_port.py").write_text(source)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "--lstm-parity-examples",
            "10",
        ],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
