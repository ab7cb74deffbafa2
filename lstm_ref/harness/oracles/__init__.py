"""Oracles: the real frameworks, each in a worker process of its own.

``client.py`` starts and talks to workers; ``protocol.py`` is the wire
format; each ``*_worker.py`` runs inside its framework's environment and
answers requests ``(kind, config, weights, x, h0, c0, mask) -> h, c``.
"""
