"""The pool of oracle workers the harness drives: one lazily started
worker per oracle, found by kind through the kind records (which name
their oracle).  Above the records; the wire-level client (``client.py``)
is below them."""

from dataclasses import replace

from ..records import record_of
from .client import ORACLES, Oracle


class OraclePool:
    """Lazily started workers, one per oracle name.  ``env`` is added to
    every worker's environment (``{"TF_ENABLE_ONEDNN_OPTS": "0"}``: TF on
    this machine with oneDNN off, another platform profile)."""

    def __init__(self, timeout: float = 300.0, env: dict = None):
        self.timeout = timeout
        self.env = dict(env or {})
        self._workers = {}

    def get(self, name: str) -> Oracle:
        if name not in self._workers:
            spec = ORACLES[name]
            if self.env:
                spec = replace(spec, env={**spec.env, **self.env})
            self._workers[name] = Oracle(spec, timeout=self.timeout)
        return self._workers[name]

    def for_kind(self, kind: str) -> Oracle:
        return self.get(record_of(kind).oracle.name)

    def close(self):
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()
