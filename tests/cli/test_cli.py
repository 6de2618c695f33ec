"""The command line: help, errors as one clear line, the demo end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paretorec.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "bench", "evaluate", "data"):
        assert command in result.output


def test_data_list() -> None:
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0
    assert "movielens-100k" in result.output and "amazon-scientific" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["bench", "nope"],
            r"benchmark must be one of amazon_scientific, fullsort, .*simulator_funnel, text_encoding; got 'nope'",
        ),
        (["data", "info", "ml-20m"], r"dataset must be one of .*; got 'ml-20m'"),
        (["evaluate", "--k", "0"], r"k must be a positive int, got 0"),
        (["evaluate", "--model", "svd"], r"model must be one of .*; got 'svd'"),
        (["evaluate", "--ratio", "1.5"], r"ratio must be in \(0, 1\), got 1.5"),
        (["pareto", "no-such.toml"], r"config: file not found: no-such.toml"),
        (
            ["pareto", "examples/pareto_ml100k.toml", "--n-trials", "0"],
            r"n_trials must be a positive int, got 0",
        ),
        (["train", "no-such.toml"], r"config: file not found: no-such.toml"),
        (
            ["train", "examples/train_ml100k_mmoe.toml", "--epochs", "0"],
            r"epochs must be a positive int, got 0",
        ),
        (
            ["data", "download", "movielens-100k", "--sha256", "xyz"],
            r"sha256 must be a 64-character hex sha256 digest, got 'xyz'",
        ),
    ],
)
def test_errors_are_one_clear_line(
    args: list[str], message: str, ml100k_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARETOREC_DATA_DIR", str(ml100k_dir.parent))
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert re.search(message, text), text
    assert "Traceback" not in result.output


def test_missing_data_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARETOREC_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("PARETOREC_CACHE_DIR", str(tmp_path / "cache"))
    result = runner.invoke(app, ["data", "info", "movielens-100k"])
    assert result.exit_code == 2
    assert "PARETOREC_DATA_DIR" in result.output and "--download" in " ".join(result.output.split())


def test_evaluate_prints_metrics(ml100k_dir: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", "--model", "popularity", "--data-dir", str(ml100k_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "ndcg@10" in result.output and "coverage@10" in result.output


@pytest.mark.slow
def test_demo_end_to_end(ml100k_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(
        app, ["demo", "--data-dir", str(ml100k_dir), "--output-dir", str(out), "--quick"]
    )
    assert result.exit_code == 0, result.output
    assert "ease" in result.output and "report:" in result.output
    rows = json.loads((out / "metrics.json").read_text())
    assert {row["name"] for row in rows} == {"random", "popularity", "itemknn", "ease", "bpr"}
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    # language-model item vectors: warm vs cold items
    assert "cold_ndcg" in result.output and "from the cache" in result.output
    cold = json.loads((out / "cold_start" / "metrics.json").read_text())
    assert {row["name"] for row in cold} >= {"ease", "sequential id", "sequential hybrid"}
    # the multi-task ranker is trained and fused into the Pareto policies
    assert "multi-task ranker on test: engage_auc=" in result.output
    front = json.loads((out / "pareto" / "front.json").read_text())
    assert "ranker_test" in front["summary"]
    assert any("like" in point["policy"]["weights"] for point in front["front"])
