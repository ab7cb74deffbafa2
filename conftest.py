"""Shared pytest set-up: Hypothesis profiles, the oracle pool, report header.

Profiles (``HYPOTHESIS_PROFILE``): ``ci`` (default: derandomized, no database,
no deadline) and ``dev`` (random, more examples).  Sizes of drawn shapes are
capped by ``LSTM_PARITY_MAX_*`` environment variables (parity_tests/strategies.py).
"""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from lstm_ref.harness.oracles.client import OracleUnavailable
from lstm_ref.harness.oracles.pool import OraclePool

# A test that uses one of these fixtures talks to a framework: it is marked
# ``live`` automatically, so that ``pytest -m "not live"`` runs everything
# else with NumPy alone (no TensorFlow installed).
LIVE_FIXTURES = {
    "oracle_pool",
    "oracle_for",
    "oracle_for_setting",
    "tensorflow_process",
    "keras3_models",
    "tf_keras_models",
}

# TF settings the float16 live tests run under, each a platform profile of
# this machine (lstm_ref/platform.py): TF's default, and oneDNN off.
TF_SETTINGS = {"default": {}, "onednn_off": {"TF_ENABLE_ONEDNN_OPTS": "0"}}

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    max_examples=int(
        os.environ.get("LSTM_PARITY_EXAMPLES", 15)
    ),  # 40 until Steps 9-11 added their tests, 30 until Steps 17-18 (gradients, two Keras backends, two Flax
    # kinds: fresh-clone make test 6:18 at 30, 6:43 at 25, 6:06 and 6:08 at 20, +-30 s run to run): < 6 min;
    # LSTM_PARITY_EXAMPLES=40 or the dev profile (200) draw more
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
def oracle_for_setting(oracle_pool):
    """``oracle_for_setting(kind, setting)``: a started worker for ``kind``
    under one of ``TF_SETTINGS`` (its ``platform`` says which profile)."""
    pools = {"default": oracle_pool}

    def get(kind, setting):
        if setting not in pools:
            pools[setting] = OraclePool(timeout=oracle_pool.timeout, env=TF_SETTINGS[setting])
        worker = pools[setting].for_kind(kind)
        try:
            worker.hello()
        except OracleUnavailable as exc:
            pytest.fail(str(exc))
        return worker

    yield get
    for setting, pool in pools.items():
        if setting != "default":
            pool.close()


@pytest.fixture(scope="session")
def oracle_for(oracle_for_setting):
    """``oracle_for(kind)`` -> a started worker for that kind's framework.

    A missing oracle environment is an error, not a skip: CI builds them all.
    """
    return lambda kind: oracle_for_setting(kind, "default")


def _models_built_once(framework, tmp_path_factory):
    """Build the framework's saved models once per test run: under
    pytest-xdist the processes share the base temp directory, and the first
    one to take the lock builds while the other waits and reuses."""
    import fcntl
    import json

    from parity_tests import saved_models

    # Under xdist every process has its own basetemp inside the run's one;
    # run serially, the parent would outlive the run, so stay inside it.
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    done = root / f"{framework}_models.json"
    with open(root / f"{framework}_models.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            directory = root / f"{framework}_models"
            directory.mkdir(exist_ok=True)
            built = saved_models.build(framework, directory)
            done.write_text(json.dumps({name: str(path) for name, path in built.items()}))
    return {name: Path(path) for name, path in json.loads(done.read_text()).items()}


@pytest.fixture(scope="session")
def keras3_models(tmp_path_factory, tensorflow_process):
    """Real Keras 3 models saved by Keras (``parity_tests/saved_models.py``): ``{file name: path}``."""
    return _models_built_once("keras3", tmp_path_factory)


@pytest.fixture(scope="session")
def tf_keras_models(tmp_path_factory, tensorflow_process):
    """Real Keras 2 (tf_keras) models, .h5 and SavedModel directories: ``{name: path}``."""
    return _models_built_once("tf_keras", tmp_path_factory)


@pytest.fixture(scope="session")
def tensorflow_process():
    """For tests that import a framework into the test process itself (a
    Keras 3 model, a TF checkpoint writer): they are live tests."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)


def pytest_report_header(config):
    import numpy

    from lstm_ref.harness.records import RECORDS

    lines = [f"numpy {numpy.__version__}"]
    lines.append("kinds -> oracles: " + ", ".join(f"{r.kind} -> {r.oracle.name}" for r in RECORDS))
    lines.append(f"hypothesis profile: {os.environ.get('HYPOTHESIS_PROFILE', 'ci')}")
    return lines
