"""Shared pytest set-up: Hypothesis profiles, the oracle pool, report header.

Profiles (``HYPOTHESIS_PROFILE``): ``ci`` (default: derandomized, no database,
no deadline) and ``dev`` (random, more examples).  Sizes of drawn shapes are
capped by ``LSTM_PARITY_MAX_*`` environment variables (parity_tests/strategies.py).
"""

import os

import pytest
from hypothesis import HealthCheck, settings

from lstm_ref.oracles.client import ORACLE_OF_KIND, OraclePool, OracleUnavailable

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    max_examples=int(os.environ.get("LSTM_PARITY_EXAMPLES", 40)),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    deadline=None,
    print_blob=True,
    max_examples=int(os.environ.get("LSTM_PARITY_EXAMPLES", 200)),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def oracle_pool():
    pool = OraclePool(timeout=float(os.environ.get("LSTM_PARITY_ORACLE_TIMEOUT", 300)))
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def oracle_for(oracle_pool):
    """``oracle_for(kind)`` -> a started worker for that kind's framework.

    A missing oracle environment is an error, not a skip: CI builds them all.
    """

    def get(kind):
        worker = oracle_pool.for_kind(kind)
        try:
            worker.hello()
        except OracleUnavailable as exc:
            pytest.fail(str(exc))
        return worker

    return get


def pytest_report_header(config):
    import numpy

    import lstm_ref

    lines = [f"lstm_ref kinds: {', '.join(lstm_ref.KINDS)}", f"numpy {numpy.__version__}"]
    lines.append("oracles: " + ", ".join(f"{k} -> {v}" for k, v in sorted(ORACLE_OF_KIND.items())))
    lines.append(f"hypothesis profile: {os.environ.get('HYPOTHESIS_PROFILE', 'ci')}")
    return lines
