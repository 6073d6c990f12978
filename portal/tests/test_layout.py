"""Where tests live: every app's tests are collected by a plain ``pytest`` (``make test``, CI)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_folder_is_under_a_testpath():
    """A folder missing from ``testpaths`` is silently never run (boards/tests was, for a while)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    testpaths = {ROOT / path for path in config["testpaths"]}
    found = [path for pattern in ("*/tests", "*/tests.py", "*/**/tests.py", "*/**/test_*.py")
             for path in ROOT.glob(pattern) if ".venv" not in path.parts and "node_modules" not in path.parts]
    assert len(found) > 10
    outside = sorted(str(path.relative_to(ROOT)) for path in found
                     if not any(path == top or top in path.parents for top in testpaths))
    assert outside == []
