"""First-use defects found from a fresh clone: one row each, with the message it must give."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from paretorec._validation import ParetorecError
from paretorec.cli import _progress_params, app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, code: int = 2) -> Callable[[Path], str]:
    def run(tmp: Path) -> str:
        result = runner.invoke(app, [a.replace("{tmp}", str(tmp)) for a in args])
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return " ".join(result.output.split())

    return run


def _api(call: Callable[[Path], object]) -> Callable[[Path], str]:
    def run(tmp: Path) -> str:
        with pytest.raises(ParetorecError) as info:
            call(tmp)
        return str(info.value)

    return run


def _ratings(tmp: Path) -> None:
    frame = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "rating": [5, -2, 4]})
    frame.to_csv(tmp / "ratings.csv", index=False)
    frame.iloc[:0].to_csv(tmp / "header_only.csv", index=False)
    (tmp / "empty.toml").write_text("# nothing yet\n")
    (tmp / "latin1.toml").write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    (tmp / "empty").mkdir()


def _truncated_manifest(tmp: Path) -> object:
    from paretorec.data import Dataset
    from paretorec.models import CandidateModel, create_model

    frame = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1]})
    model = create_model("popularity").fit(Dataset.from_frames("t", frame))
    folder = model.save(tmp / "model")
    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text()[:20])
    return CandidateModel.load(folder)


def _cold_start_plots(tmp: Path) -> str:
    from paretorec.demo import COLD_PLOTS
    from paretorec.reporting import write_baseline_report
    from paretorec.reporting._report import PLOTS, plots_with_data

    rows = [
        {"name": name, "metrics": {"warm_ndcg@10": w, "warm_recall@10": w, "cold_ndcg@10": c,
                                   "cold_recall@10": c}}
        for name, w, c in (("ease", 0.3, 0.0), ("hybrid", 0.28, 0.1))
    ]  # fmt: skip
    assert plots_with_data(rows, PLOTS) == []  # the baseline plots would all be empty
    page = write_baseline_report(
        tmp, title="cold", rows=rows, columns=list(rows[0]["metrics"]), plots=COLD_PLOTS
    ).read_text()
    return f"{page.count('data:image/png;base64,')} plots"


#: (defect, how it is triggered, what the user must see)
DEFECTS: list[tuple[str, Callable[[Path], str], str]] = [
    ("empty pareto config", _cli("pareto", "{tmp}/empty.toml"), "is empty; an empty config"),
    ("empty train config", _cli("train", "{tmp}/empty.toml"), "would run with every default"),
    ("non-UTF-8 config", _cli("pareto", "{tmp}/latin1.toml"), "latin1.toml is not UTF-8 text"),
    (
        "--data-dir wins over PARETOREC_DATA_DIR",
        _cli("evaluate", "--data-dir", "{tmp}/empty"),
        "data_dir: {tmp}/empty does not hold 'movielens-100k'",
    ),
    (
        "pareto --data-dir",
        _cli("pareto", str(REPO / "examples/pareto_ml100k.toml"), "--data-dir", "{tmp}/empty"),
        "the explicit data_dir wins over $PARETOREC_DATA_DIR",
    ),
    (
        "negative rating",
        _cli("evaluate", "--data", "{tmp}/ratings.csv"),
        "label column 'rating' must be in [1.0, 5.0]; row 1 holds -2",
    ),
    ("rating check opt-out named", _cli("data", "info", "{tmp}/ratings.csv"), "check_ranges"),
    ("header-only CSV", _cli("data", "info", "{tmp}/header_only.csv"), "has no rows"),
    ("truncated manifest.json", _api(_truncated_manifest), "manifest.json is not valid JSON"),
    (
        "unknown model parameter",
        _api(lambda tmp: __import__("paretorec.models").models.create_model("ease", lambda_=600)),
        "ease has no parameter(s) 'lambda_'; valid parameters: regularization",
    ),
    (
        "pareto config checked before training",
        _cli("pareto", "{tmp}/late.toml"),
        "objectives.item_vectors must be one of auto, text, model, none or an item column; "
        "got 'tags'",
    ),
    (
        "gap objective without its user group",
        _cli("pareto", "{tmp}/gap.toml"),
        "objectives.names: 'gap[gender]' needs 'gender' in objectives.user_groups",
    ),
    ("cold-start report plots", _cold_start_plots, "3 plots"),
    ("bench --help lists benchmarks", _cli("bench", "--help", code=0), "ml100k_pareto"),
    ("--version", _cli("--version", code=0), "paretorec 0.1.0"),
]


@pytest.mark.parametrize(("defect", "trigger", "message"), DEFECTS, ids=[d[0] for d in DEFECTS])
def test_first_use_defects(
    defect: str,
    trigger: Callable[[Path], str],
    message: str,
    tmp_path: Path,
    ml100k_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARETOREC_DATA_DIR", str(ml100k_dir.parent))
    _ratings(tmp_path)
    ranker = "\n[ranker]\n[ranker.trainer]\nepochs = 30\n"
    (tmp_path / "late.toml").write_text(
        f'output_dir = "{tmp_path}/run"\n[objectives]\nitem_vectors = "tags"\n' + ranker
    )
    (tmp_path / "gap.toml").write_text(
        f'output_dir = "{tmp_path}/run"\n[objectives]\nnames = ["ndcg", "gap[gender]"]\n'
    )
    shown = trigger(tmp_path)
    assert message.replace("{tmp}", str(tmp_path)) in shown, shown
    if defect == "pareto config checked before training":
        assert "fitted" not in shown and not (tmp_path / "run").exists()


def test_evaluate_shows_progress_for_models_that_train_for_minutes() -> None:
    assert _progress_params("sequential") == {"show_progress": True}
    assert _progress_params("bpr") == {"progress": True}
    assert _progress_params("ease") == {}
