"""Every kind, from its record: the reference against its real framework,
every step, on the kind's own Hypothesis examples; and oracle mode against
the framework run in float64.

A kind's record (its slice in ``lstm_ref/harness/kinds/``) links its strategy
and its oracle; nothing here names a kind.
"""

import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from lstm_ref.harness.compare import assert_run_parity
from lstm_ref.harness.records import RECORDS
from lstm_ref.variants import never

from . import pytest_helpers as ph

BY_RECORD = pytest.mark.parametrize("record", RECORDS, ids=[r.id for r in RECORDS])


@BY_RECORD
@given(data=st.data())
def test_matches_its_framework_every_step(oracle_for, record, data):
    case = data.draw(record.examples(), label="case")
    note(case.describe())
    desired = oracle_for(record.kind).run(case)
    assert_run_parity(case, desired)


# Half the profile's examples: a claim about float64 arithmetic, also checked
# on every golden (test_golden.py); 15 a kind in CI.  A kind whose framework
# has no float64 kernel (ONNX Runtime's LSTM) has no twin to run.
TWINNED = [r for r in RECORDS if r.float64_twin is not never]


@pytest.mark.parametrize("record", TWINNED, ids=[r.id for r in TWINNED])
@settings(max_examples=max(1, settings().max_examples // 2))
@given(data=st.data())
def test_oracle_mode_is_its_framework_in_float64(oracle_for, record, data):
    """Oracle mode is float64 arithmetic on the inputs as TF holds them: it
    must match the framework itself run in float64, to the float64 tolerance."""
    case = data.draw(record.examples(), label="case")
    assume(record.float64_twin(case))
    note(case.describe())
    ph.assert_oracle_mode_is_tf_float64(oracle_for(record.kind), case)
