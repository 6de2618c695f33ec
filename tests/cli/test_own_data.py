"""Your own data, end to end: a generic events file (ratings + item text, no genres) through
`data info`, `evaluate`, `train` and `pareto`, from config files alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from paretorec.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]

WORDS = ("coffee", "tea", "mug", "grinder", "kettle", "filter", "beans", "scale")


def _write_shop(folder: Path) -> None:
    """~2,400 rated events of 80 users on 60 products with names, no categories."""
    rng = np.random.default_rng(0)
    taste = rng.integers(0, 2, size=80)
    rows = []
    for user in range(80):
        items = rng.choice(60, size=30, replace=False)
        for position, item in enumerate(items):
            liked = (item % 2) == taste[user]
            rating = int(np.clip(rng.normal(4.2 if liked else 2.3, 0.8), 1, 5))
            rows.append((f"u{user}", f"p{item}", rating, 1_600_000_000 + 3600 * position))
    events = pd.DataFrame(rows, columns=["customer", "product", "rating", "time"])
    events.to_csv(folder / "events.csv.gz", index=False)
    items = [
        {"sku": f"p{i}", "name": f"{WORDS[i % 8]} {WORDS[(i // 8) % 8]} no. {i}",
         "about": "" if i % 7 == 0 else f"a {'dark' if i % 2 else 'light'} {WORDS[i % 8]}"}
        for i in range(60)
    ]  # fmt: skip
    (folder / "products.jsonl").write_text("\n".join(json.dumps(row) for row in items) + "\n")


DATA_SECTION = """
[data]
path = "{folder}/events.csv.gz"
ratio = 0.75

[data.columns]
user = "customer"
item = "product"
timestamp = "time"
labels = ["rating"]

[data.items]
path = "{folder}/products.jsonl"
id = "sku"
text = ["name", "about"]
"""


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PARETOREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _write_shop(tmp_path)
    return tmp_path


def test_data_info_shows_what_was_understood(shop: Path) -> None:
    config = shop / "data.toml"
    config.write_text(DATA_SECTION.format(folder=shop))
    result = runner.invoke(app, ["data", "info", str(config)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "users=80, items=60, interactions=2,400" in text
    assert "label rating: 1 to 5" in text and "timestamps: 2020-09-13" in text
    assert "items without text: 0 of 60" in text and "sparsity 50.0000%" in text
    # a bare file: the columns are guessed, the side table is not needed
    raw = runner.invoke(app, ["data", "info", str(shop / "products.jsonl")])
    assert raw.exit_code == 2 and "columns.user" in raw.output


@pytest.mark.slow
def test_evaluate_train_and_pareto_from_config_files(shop: Path) -> None:
    config = shop / "shop.toml"
    config.write_text(
        f'name = "shop"\noutput_dir = "{shop}/pareto"\n'
        + DATA_SECTION.format(folder=shop)
        + '\n[candidates]\nmodel = "ease"\nparams = { regularization = 50.0 }\nn_candidates = 30\n'
        + '\n[search]\nn_trials = 8\npopulation_size = 4\nstorage = "study.db"\n'
    )
    evaluated = runner.invoke(app, ["evaluate", "--data", str(config), "--model", "ease"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "ndcg@10" in evaluated.output and "events.csv.gz: stratified split" in evaluated.output

    train = shop / "train.toml"
    train.write_text(
        f'name = "shop-mmoe"\noutput_dir = "{shop}/train"\n'
        + DATA_SECTION.format(folder=shop)
        + "\n[trainer]\nepochs = 3\nprogress = false\n"
    )
    trained = runner.invoke(app, ["train", str(train)])
    assert trained.exit_code == 0, trained.output
    metrics = json.loads((shop / "train" / "metrics.json").read_text())
    assert metrics["dataset"] == "events" and metrics["test"]["engage_auc"] > 0.5

    searched = runner.invoke(app, ["pareto", str(config)])
    assert searched.exit_code == 0, searched.output
    assert "ILD from language-model vectors of the item text" in " ".join(searched.output.split())
    front = json.loads((shop / "pareto" / "front.json").read_text())
    assert front["features"]["item_vectors"] == "language-model vectors of the item text"
    ild = [point["test"]["ild"] for point in front["front"]]
    assert ild and all(0 < value < 2 for value in ild)
    assert "ILD computed from" in (shop / "pareto" / "report.html").read_text()


@pytest.mark.slow
def test_ml1m_generic_example_runs_pareto(
    ml1m_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/pareto_ml1m_generic.toml: ML-1M read through the generic path (quick budget)."""
    monkeypatch.setenv("PARETOREC_DATA_DIR", str(ml1m_dir.parent))
    result = runner.invoke(
        app,
        [
            "pareto",
            str(REPO / "examples" / "pareto_ml1m_generic.toml"),
            "--n-trials",
            "6",
            "--output-dir",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    front = json.loads((tmp_path / "run" / "front.json").read_text())
    assert front["features"]["item_vectors"] == "item column 'genres'"
    assert front["summary"]["front_size"] >= 1
    assert max(point["test"]["ndcg"] for point in front["front"]) > 0.3


@pytest.mark.parametrize(
    ("model", "parameter"), [("ease", "regularization"), ("itemknn", "neighbors")]
)
def test_evaluate_tune_prints_the_chosen_value(shop: Path, model: str, parameter: str) -> None:
    config = shop / "data.toml"
    config.write_text(DATA_SECTION.format(folder=shop))
    result = runner.invoke(
        app, ["evaluate", "--data", str(config), "--model", model, "--tune", "--tune-trials", "4"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"tuned {model}: {parameter} = " in text and "best of 4 trials" in text
    assert "ndcg@10" in text
    plain = runner.invoke(
        app, ["evaluate", "--data", str(config), "--model", "popularity", "--tune"]
    )
    assert plain.exit_code == 0 and "popularity: nothing to tune" in plain.output
