"""Results from a dirty tree are refused unless allowed, and then marked everywhere."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paretorec import ParetorecError
from paretorec.benchmarks import BENCHMARKS
from paretorec.benchmarks._harness import make_result, provenance, write_result
from paretorec.benchmarks._render import DIRTY_NOTE, DIRTY_TITLE, render_markdown
from paretorec.cli import app

REFUSAL = "the working tree has uncommitted changes to tracked files"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A one-commit repository; its tracked file is edited by the tests that want it dirty."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.email", "t@example.org")
    git(root, "config", "user.name", "t")
    (root / "code.py").write_text("x = 1\n")
    git(root, "add", "code.py")
    git(root, "commit", "-q", "-m", "one")
    return root


def toy() -> dict[str, Any]:
    return make_result("movielens100k", protocol={"p": 1}, rows=[], summary={"s": 0.5})


def test_a_clean_tree_writes_a_clean_result(repo: Path, tmp_path: Path) -> None:
    with provenance(cwd=repo) as commit:
        result = toy()
        write_result(result, tmp_path / "out")
    assert result["commit"] == commit == git(repo, "rev-parse", "HEAD")
    assert result["dirty"] is False
    # untracked files do not make a tree dirty
    (repo / "notes.txt").write_text("scratch")
    with provenance(cwd=repo):
        pass


def test_a_dirty_tree_is_refused_before_the_run(repo: Path) -> None:
    (repo / "code.py").write_text("x = 2\n")
    with pytest.raises(ParetorecError, match=REFUSAL), provenance(cwd=repo):
        pytest.fail("the run must not start")


def test_write_result_refuses_a_dirty_result_unless_allowed(tmp_path: Path) -> None:
    result = {**toy(), "commit": "abc+dirty", "dirty": True}
    with pytest.raises(ParetorecError, match=REFUSAL):
        write_result(result, tmp_path)
    assert not (tmp_path / "movielens100k.json").exists()
    assert write_result(result, tmp_path, allow_dirty=True).is_file()


def test_allowed_dirty_results_are_marked_in_benchmarks_md(repo: Path, tmp_path: Path) -> None:
    (repo / "code.py").write_text("x = 2\n")
    with provenance(allow_dirty=True, cwd=repo) as commit:
        result = toy()
        path = write_result(result, tmp_path / "results")
    assert commit.endswith("+dirty") and result["dirty"] is True
    assert json.loads(path.read_text())["dirty"] is True
    page = render_markdown(tmp_path / "results")
    assert DIRTY_TITLE in page and DIRTY_NOTE in page
    # a clean result is not marked
    clean = {**result, "commit": "abc", "dirty": False}
    write_result(clean, tmp_path / "clean")
    page = render_markdown(tmp_path / "clean")
    assert DIRTY_TITLE not in page and DIRTY_NOTE not in page


def test_cli_bench_refuses_a_dirty_tree_unless_allow_dirty(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[dict[str, Any]] = []

    def fake(output_dir: Path, *, data_dir: Any = None, quick: bool = False) -> None:
        result = toy()
        write_result(result, output_dir)
        written.append(result)

    monkeypatch.setitem(BENCHMARKS, "fake", fake)
    monkeypatch.chdir(repo)
    (repo / "code.py").write_text("x = 2\n")
    runner = CliRunner()
    refused = runner.invoke(app, ["bench", "fake", "--output-dir", "out"])
    assert refused.exit_code == 2 and REFUSAL in refused.output
    assert not written and not (repo / "out").exists()
    allowed = runner.invoke(app, ["bench", "fake", "--output-dir", "out", "--allow-dirty"])
    assert allowed.exit_code == 0, allowed.output
    assert written[0]["dirty"] is True and written[0]["commit"].endswith("+dirty")
    # once committed, the result names the new commit and is clean
    git(repo, "commit", "-q", "-am", "two")
    written.clear()
    assert runner.invoke(app, ["bench", "fake", "--output-dir", "out"]).exit_code == 0
    assert written[0]["commit"] == git(repo, "rev-parse", "HEAD") and not written[0]["dirty"]


def test_benchmark_outputs_do_not_make_a_tree_dirty(repo: Path) -> None:
    """Every benchmark can run at one commit: the previous runs' uncommitted result files
    and BENCHMARKS.md are outputs, not code; any other tracked change still counts."""
    results = repo / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "a.json").write_text("{}\n")
    (repo / "BENCHMARKS.md").write_text("# old\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "outputs")
    head = git(repo, "rev-parse", "HEAD")
    (results / "a.json").write_text('{"new": 1}\n')
    (repo / "BENCHMARKS.md").write_text("# new\n")
    with provenance(cwd=repo) as commit:
        assert commit == head
    # from a subfolder too (the exclusion is relative to the repository's top)
    with provenance(cwd=results) as commit:
        assert commit == head
    (repo / "code.py").write_text("x = 2\n")
    with pytest.raises(ParetorecError, match=REFUSAL), provenance(cwd=repo):
        pytest.fail("the run must not start")
    with pytest.raises(ParetorecError, match=REFUSAL), provenance(cwd=results):
        pytest.fail("the run must not start")


def test_benchmarks_md_says_which_commit_the_results_come_from(tmp_path: Path) -> None:
    base = toy()
    for name, commit in (("movielens100k", "aaa"), ("fullsort", "aaa"), ("scale", "aaa")):
        write_result({**base, "benchmark": name, "commit": commit, "dirty": False}, tmp_path)
    page = render_markdown(tmp_path)
    assert "All 3 results come from one commit: `aaa`." in page
    assert "[other commit]" not in page
    write_result({**base, "benchmark": "scale", "commit": "bbb", "dirty": False}, tmp_path)
    page = render_markdown(tmp_path)
    assert "2 of 3 results come from commit `aaa`" in page and "`scale` (bbb)" in page
    titles = [line for line in page.splitlines() if line.startswith("## ")]
    marked = [line for line in titles if line.endswith("[other commit]")]
    assert len(titles) == 3 and len(marked) == 1 and "(`scale`)" in marked[0]


def test_every_result_names_its_machine(tmp_path: Path) -> None:
    from paretorec.benchmarks._harness import environment

    env = environment()
    assert env["cpu"] and env["cpu_vector_isa"] in ("avx512_vnni", "avx512", "avx2", "arm64")
    write_result({**toy(), "commit": "abc", "dirty": False}, tmp_path)
    page = render_markdown(tmp_path)
    line = next(x for x in page.splitlines() if x.startswith("- machine: "))
    assert env["cpu"] in line and f"{env['cpu_count']} cores" in line
    # results written before the CPU was recorded still render
    old = {**toy(), "commit": "abc", "dirty": False}
    old["environment"] = {"cpu_count": 2, "platform": "Linux"}
    write_result(old, tmp_path)
    assert "- machine: CPU model not recorded, 2 cores, platform Linux" in render_markdown(tmp_path)
