"""The README's Python example runs as written (STYLE: documentation examples are tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_runs(
    ml100k_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.setenv("PARETOREC_DATA_DIR", str(ml100k_dir.parent))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert (tmp_path / "models" / "ease" / "manifest.json").is_file()


def test_readme_commands_match_ci() -> None:
    """The test command in the README is the one .ci/run executes."""
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert ".venv/bin/python -m pytest -n 2" in text
    assert ".venv/bin/python -m pytest -n 2" in ci
    assert "bash scripts/setup.sh" in text and "paretorec demo" in text
