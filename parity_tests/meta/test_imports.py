"""The package's layers, checked from its source with ``ast``: no import
cycles (function-level imports included: a cycle dodged by importing late
is still a cycle), and the core imports nothing from the harness.

    core (lstm_ref/*.py)  <-  harness (lstm_ref/harness/)  <-  commands (lstm_ref/harness/commands/)
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lstm_ref"


def modules():
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name, path, known):
    """The package's modules ``name`` imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "lstm_ref"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "lstm_ref":
                continue
            for alias in node.names:  # `from . import x` imports the module x
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module)
    return {m for m in found if m in known and m != name}


def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_imports_nothing_from_the_harness():
    """(``python -m lstm_ref``, ``lstm_ref/__main__.py``, is the command line's door, not the core.)"""
    bad = {
        name: sorted(m for m in deps if m.startswith("lstm_ref.harness"))
        for name, deps in graph().items()
        if not name.startswith("lstm_ref.harness") and name != "lstm_ref.__main__"
    }
    assert not {k: v for k, v in bad.items() if v}


def test_only_commands_import_commands():
    bad = {
        name: sorted(m for m in deps if m.startswith("lstm_ref.harness.commands"))
        for name, deps in graph().items()
        if not name.startswith("lstm_ref.harness.commands")
        and name not in ("lstm_ref.__main__", "lstm_ref.harness.cli")
    }
    assert not {k: v for k, v in bad.items() if v}


def test_every_family_module_is_listed():
    """A module of the core that registers kinds is in ``reference.FAMILIES``
    (else ``from_config`` would not find its kinds until it was imported)."""
    import subprocess
    import sys

    probe = (
        "import importlib, pkgutil, lstm_ref; from lstm_ref.reference import REGISTRY, load_families; "
        "listed = set(load_families()); "
        "[importlib.import_module('lstm_ref.' + m.name) for m in pkgutil.iter_modules(lstm_ref.__path__) "
        "if not m.ispkg and m.name != '__main__']; "
        "assert set(REGISTRY) == listed, sorted(set(REGISTRY) - listed)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
