"""The README and docs/ cannot rot: every example in them is run or parsed.

* ```` ```python ```` blocks run, each in a fresh namespace (NumPy only);
  ```` ```python fragment ```` marks an excerpt with names from its context,
  which is not run;
* ```` ```pycon ```` blocks are doctests: their printed values are checked;
* ```` ```console ```` blocks: every ``$ lstm-ref ...`` line is parsed by the
  real command-line parser (a renamed command or flag fails);
* ```` ```bash ```` blocks: every ``make TARGET`` names a target of the
  Makefile, every ``pip install`` names an extra pyproject.toml declares.
"""

import doctest
import re
import shlex
from pathlib import Path

import pytest

from lstm_ref.harness.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.M | re.S)


def blocks(kind):
    out = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            info = match.group(1).split()
            if info[:1] == [kind] and "fragment" not in info:
                line = text[: match.start()].count("\n") + 1
                out.append(pytest.param(match.group(2), id=f"{page.relative_to(ROOT)}:{line}"))
    return out


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, len(lines)
    for page in PAGES[1:]:  # every page is linked from it
        assert f"(docs/{page.name})" in "\n".join(lines), page.name


@pytest.mark.parametrize("source", blocks("python"))
def test_python_example_runs(source):
    exec(compile(source, "<docs>", "exec"), {})


@pytest.mark.parametrize("source", blocks("pycon"))
def test_doctest_example(source):
    test = doctest.DocTestParser().get_doctest(source, {}, "docs", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


@pytest.mark.parametrize("source", blocks("console"))
def test_console_example_parses(source):
    commands = [line[2:] for line in source.splitlines() if line.startswith("$ lstm-ref ")]
    assert commands or "$ " in source
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command, comments=True)[1:]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"`{command}` does not parse (exit {exc.code})")


def _make_targets():
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.M))


def _extras():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


@pytest.mark.parametrize("source", blocks("bash"))
def test_shell_example_names_real_targets(source):
    targets, extras = _make_targets(), _extras()
    for line in source.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["make"]:
            named = [w for w in words[1:] if "=" not in w]
            assert set(named) <= targets, (line, sorted(targets))
        if words[:2] == ["pip", "install"]:
            for extra in re.findall(r"\[([a-z,-]+)\]", line):
                assert set(extra.split(",")) <= extras, (line, sorted(extras))
