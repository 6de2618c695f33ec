"""paretorec recommend / export / serve from the command line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paretorec.cli import app

runner = CliRunner()


def test_recommend_prints_titles_and_explanations(tiny_bundle: Path) -> None:
    result = runner.invoke(
        app,
        [
            "recommend",
            str(tiny_bundle),
            "--user",
            "u1",
            "--preference",
            "ndcg=2,ild=1",
            "--explain",
            "--k",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(preference)" in result.output and "expected on test: ndcg=" in result.output
    assert result.output.count("[m") == 3 and "because you liked" in result.output
    cold = runner.invoke(app, ["recommend", str(tiny_bundle), "--user", "stranger"])
    assert cold.exit_code == 0 and "cold start: popularity" in cold.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "u1", "--preference", "ndcg2"], "preference must read NAME=WEIGHT"),
        (["--user", "u1", "--preference", "speed=1"], "'speed' is not one of"),
        (["--user", "u1", "--point", "77"], "point must be a front point id"),
        (["--history", "m1,zzz"], "unknown item id 'zzz'"),
    ],
)
def test_recommend_errors(tiny_bundle: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["recommend", str(tiny_bundle), *args])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_export_and_serve_refuse_bad_inputs(tiny_bundle: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path), "-o", str(tmp_path / "b")])
    assert result.exit_code == 2 and "holds no front.json" in " ".join(result.output.split())
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "items" / "tensors.safetensors").write_bytes(b"broken")
    served = runner.invoke(app, ["serve", str(broken), "--port", "1"])
    assert served.exit_code == 2 and "corrupt or was modified" in " ".join(served.output.split())
