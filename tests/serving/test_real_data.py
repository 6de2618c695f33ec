"""End to end on MovieLens-100k: a small Pareto run, its bundle, the service (skips without
the data), and the real language model behind /items on the tiny catalogue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from paretorec.serving import (
    Recommender,
    ServiceSettings,
    create_app,
    explanation_fidelity,
    export_bundle,
    load_bundle,
)

from .conftest import WordEncoder, build_tiny_bundle
from .test_readme_serving import readme_curl_calls, run_readme_calls


@pytest.fixture(scope="module")
def ml100k_run(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from rich.console import Console

    from paretorec.config import ParetoConfig
    from paretorec.pareto import run_pareto

    settings = ParetoConfig.from_dict(
        {
            "name": "serving-test",
            "data": {"data_dir": str(ml100k_dir)},
            "search": {"n_trials": 16, "population_size": 8, "storage": None},
        }
    )
    out = tmp_path_factory.mktemp("pareto")
    run = run_pareto(settings, output_dir=out, console=Console(quiet=True), progress=False)
    return run, out


def test_movielens_bundle_serves_the_offline_picks(ml100k_run, tmp_path: Path) -> None:
    run, _ = ml100k_run
    bundle = export_bundle(run, tmp_path / "bundle", text_encoder=WordEncoder())
    recommender = Recommender(bundle, encoder=WordEncoder())
    equal = {name: 1.0 for name in run.objectives}
    picked = recommender.recommend(196, preference=equal)
    assert picked.point["describe"] == run.summary["equal_preference_policy"]
    assert (
        recommender.points[recommender.default_point].policy.describe()
        == (run.summary["knee_policy"])
    )
    assert picked.known_user and len(picked.items) == 10 and picked.items[0].title
    cold = recommender.recommend("no-such-user")
    assert cold.fallback == "popularity" and len(cold.items) == 10
    users = [str(u) for u in load_bundle(bundle).user_ids[:25]]
    fidelity = explanation_fidelity(recommender, users, k=10)
    assert fidelity["checked"] >= 100 and fidelity["pass_rate"] >= 0.95
    settings = ServiceSettings(
        admin_token="secret", feedback_url=str(tmp_path / "fb.db"), encoder=WordEncoder()
    )
    assert len(readme_curl_calls()) == 4
    with TestClient(create_app(recommender, settings)) as client:
        recommended, stored, added, _ = run_readme_calls(client)
    assert recommended["known_user"] and stored["stored"] == 1
    assert added["items"][0]["status"] == "created"


def test_export_from_the_run_folder(ml100k_run, tmp_path: Path) -> None:
    from paretorec.reporting import write_pareto_report

    run, out = ml100k_run
    assert (out / "models" / "candidates" / "manifest.json").is_file()
    write_pareto_report(run, out)
    bundle = load_bundle(export_bundle(out, tmp_path / "bundle", text_encoder=None))
    assert [p.policy for p in bundle.points] == run.front_policies()
    np.testing.assert_allclose(
        [[p.test[o] for o in run.objectives] for p in bundle.points], run.holdout["full"].test
    )
    assert bundle.text_vectors is None
    context = run.fitted["context"]  # the item context the policies were judged with
    np.testing.assert_array_equal(bundle.groups, context.groups)
    np.testing.assert_allclose(bundle.vectors, np.asarray(context.vectors.todense()))


def test_real_language_model_adds_a_matching_item(tmp_path: Path) -> None:
    """The bundle names the default model; /items encodes with it (no encoder injected)."""
    text = pytest.importorskip("paretorec.text")
    try:
        encoder = text.TextEncoder("default", cache_dir=None, show_progress=False)
    except Exception as exc:  # the packaged model missing from this environment
        pytest.skip(f"default language model unavailable: {exc}")
    bundle = build_tiny_bundle(tmp_path / "bundle", encoder=encoder)
    recommender = Recommender(bundle)
    assert load_bundle(bundle).text_encoder["model"] == "default"
    history = ["m30", "m31", "m32", "m33"]
    text_of_history = " and ".join(recommender.title(h) for h in history)
    recommender.add_items([{"item_id": "cookbook", "text": f"A cookbook: {text_of_history}"}])
    after = recommender.recommend(history=history, k=10)
    assert "cookbook" in {item.item_id for item in after.items}
