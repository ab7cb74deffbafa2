# The front door.  `make test` and `make report` build everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: test lint report fixtures fixtures-check record-platform bench mutants venvs clean \
        venv venv-tfa venv-torch venv-onnx venv-litert venv-jax

# One venv per `oracle-<name>` extra of pyproject.toml: .venv-<name>, where
# ORACLES (lstm_ref/harness/oracles/client.py) runs that oracle's worker
# (parity_tests/meta/test_records.py keeps the two in step).
ORACLE_VENVS := $(shell $(PYTHON) -c "import tomllib; print(' '.join('.venv-' + k[7:] for k in tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies'] if k.startswith('oracle-')))")

$(if $(ORACLE_VENVS),,$(error no oracle venvs read from pyproject.toml: $(PYTHON) must be Python 3.11+ (tomllib)))

venvs: $(STAMP) $(ORACLE_VENVS:%=%/.installed)

# One venv at a time, for a user who needs only some oracles (sizes as
# measured on Linux x86-64; README.md's install section lists them):
# .venv is TF 2.21 + Keras 3 + tf_keras and the test tools (2.4 GB), the
# Keras, tf_keras and TF1 oracles' interpreter; each .venv-<name> is the
# `oracle-<name>` extra alone (tfa 1.1 GB, torch 1.0 GB, onnx 0.13 GB,
# litert 0.08 GB).  The oracles find them (client.py, OracleSpec.locate).
venv: $(STAMP)
venv-tfa: .venv-tfa/.installed
venv-torch: .venv-torch/.installed
venv-onnx: .venv-onnx/.installed
venv-litert: .venv-litert/.installed
venv-jax: .venv-jax/.installed

# uv installs wheels several times faster than pip (measured here: the TF
# venv in 21 s instead of about 100 s).  It reads no pip.conf, so it gets
# pip's extra indexes and find-links from pip itself, and picks the best
# version across them as pip does, torch's local CPU build included (found
# through pip's find-links: 2.13.0+cpu, measured 12 s against pip's 40 s).
# --compile-bytecode: as pip does; without it every worker start compiles TF
# anew until the .pyc files exist (measured on a fresh clone: pytest 338 s
# without it, 174 s with it; `make test` 6:24 -> 3:43).
UV := .venv-uv/bin/uv
UV_FROM_PIP = $(foreach u,$(shell $(PYTHON) -m pip config get global.extra-index-url 2>/dev/null),--extra-index-url $(u)) \
              $(foreach f,$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null),--find-links $(f))
UV_INSTALL = $(UV) pip install -q --compile-bytecode --index-strategy unsafe-best-match $(UV_FROM_PIP) --python

$(UV):
	$(PYTHON) -m venv .venv-uv
	.venv-uv/bin/pip install -q --disable-pip-version-check uv

$(STAMP): pyproject.toml | $(UV)
	$(UV) venv -q --seed --allow-existing --python $(PYTHON) $(VENV)
	$(UV_INSTALL) $(VENV)/bin/python -e '.[oracle,test,report]'
	touch $@

# Each oracle's extra alone in its venv: the workers import lstm_ref from the
# work tree (the client sets PYTHONPATH), and no second editable build races
# the first one for the egg-info when venvs are built at once.  TF 2.15 +
# tensorflow-addons cannot share a venv with TF 2.21 / Keras 3; LiteRT runs
# the .tflite files TF's converter writes in .venv (lstm_ref/harness/tflite/).
extra = $(shell $(PYTHON) -c "import tomllib; print(' '.join(repr(r) for r in tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['$(1)']))")

.venv-%/.installed: pyproject.toml | $(UV)
	$(UV) venv -q --seed --allow-existing --python $(PYTHON) .venv-$*
	$(UV_INSTALL) .venv-$*/bin/python $(call extra,oracle-$*)
	touch $@


# Two processes (the machine's two cores; measured: three are slower); the
# saved models the check tests use are built once and shared (conftest.py).
# worksteal: an idle process takes tests queued on the other, so the few
# 15-70 s end-to-end tests do not leave one core idle at the end (measured
# warm: pytest 262 s against 298 s with the default load scheduling).
# PYTEST_ARGS= runs serially.
PYTEST_ARGS ?= -n 2 --dist worksteal

# The venvs are built two at a time (most of the time is unpacking wheels).
test:
	$(MAKE) -j2 venvs
	$(MAKE) lint
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff, configured in pyproject.toml (120 columns): the lint, then the format (`ruff format .` fixes it).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

report:
	$(MAKE) -j2 venvs
	$(PY) -m lstm_ref report

fixtures: venvs
	$(PY) -m lstm_ref.harness.golden generate $(FIXTURES_ARGS)

fixtures-check: venvs
	$(PY) -m lstm_ref.harness.golden check

# What the frameworks compute on this CPU, for the suite to replay anywhere
# (lstm_ref/harness/platforms.py): make record-platform NAME=my-runner
record-platform: venvs
	@test -n "$(NAME)" || { echo "usage: make record-platform NAME=<name> (writes fixtures/platforms/<name>)" >&2; exit 2; }
	$(PY) -m lstm_ref record-platform fixtures/platforms/$(NAME)

bench: $(STAMP)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[bench]'  # pip: torch is the local CPU build
	$(PY) -m lstm_ref.harness.bench

mutants: venvs
	$(PY) -m tools.mutants

clean:
	rm -rf $(VENV) $(ORACLE_VENVS) .venv-uv reports .pytest_cache .hypothesis
