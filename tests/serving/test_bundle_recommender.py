"""Bundle integrity and the Recommender: picks equal the offline ones, fold-in, cold start."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from paretorec import ParetorecError
from paretorec.pareto import ParetoFront
from paretorec.serving import Recommender, explanation_fidelity, load_bundle, verify_bundle

from .conftest import WordEncoder, build_tiny_bundle


@pytest.fixture(scope="module")
def recommender(tiny_bundle: Path) -> Recommender:
    return Recommender(tiny_bundle, encoder=WordEncoder())


def _copy(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(bundle, target)
    return target


def test_bundle_round_trip_has_no_pickle(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    manifest = verify_bundle(tiny_bundle)
    suffixes = {Path(name).suffix for name in manifest["files"]}
    assert suffixes == {".json", ".safetensors"}
    assert len(bundle.points) == 7 and bundle.objectives == ("ndcg", "ild", "coverage", "novelty")
    assert bundle.text_encoder is not None and bundle.text_encoder["model"] == "word-hash-64"
    assert bundle.model.n_items == len(bundle.item_ids) == 60


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "candidates" / "tensors.safetensors").write_bytes(b"x" * 64), "corrupt"),
        (
            lambda p: (p / "bundle.json").write_text(
                (p / "bundle.json").read_text().replace('"k": 5', '"k": 6')
            ),
            "modified",
        ),
        (lambda p: (p / "items" / "config.json").unlink(), "file missing"),
        (lambda p: (p / "manifest.json").unlink(), "missing manifest.json"),
        (lambda p: (p / "manifest.json").write_text("{not json"), "corrupt"),
    ],
    ids=["tensors", "tampered-json", "missing-file", "no-manifest", "bad-manifest"],
)
def test_damaged_bundle_is_refused(tiny_bundle: Path, tmp_path: Path, damage, message) -> None:
    copy = _copy(tiny_bundle, tmp_path)
    damage(copy)
    with pytest.raises(ParetorecError, match=message):
        Recommender(copy, encoder=WordEncoder())


def test_manifest_entry_outside_the_bundle_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_bundle, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["../outside"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ParetorecError, match="outside the bundle"):
        verify_bundle(copy)


@pytest.mark.parametrize(
    "weights",
    [{"ndcg": 1.0}, {"ndcg": 2, "ild": 1}, {"novelty": 1}, {"coverage": 1, "ild": 3}, {"ild": 1}],
)
def test_preference_pick_equals_offline_pick(recommender: Recommender, weights) -> None:
    bundle = recommender.bundle
    names = list(bundle.objectives)
    offline = ParetoFront(
        values=[[p.validation[o] for o in names] for p in bundle.points],
        directions=list(bundle.directions),
        names=names,
    ).pick(weights)
    result = recommender.recommend("u0", preference=weights, k=5)
    assert result.point["id"] == offline and result.point["chosen_by"] == "preference"
    assert result.point["expected"] == bundle.points[offline].test


def test_constraint_pick_equals_epsilon_constraint(recommender: Recommender) -> None:
    values = recommender.front.values
    best = values[:, 0].max()
    offline = recommender.front.pick_constrained("ild", {"ndcg": 0.8 * best})
    served = recommender.recommend("u0", constraints=["ndcg >= 0.8 * best"], optimize="ild").point[
        "id"
    ]
    same = recommender.recommend(
        "u0",
        constraints=[{"objective": "ndcg", "op": ">=", "value": 0.8, "relative": True}],
        optimize="ild",
    ).point["id"]
    assert served == same == offline


def test_known_user_list_matches_the_policy_offline(recommender: Recommender) -> None:
    from paretorec.ranking import CandidateSet, apply_policy

    model = recommender.model
    user = list(recommender.bundle.user_ids).index("u4")
    result = recommender.recommend("u4", point=1, k=5)
    candidates = CandidateSet.from_model(model, np.array([user]), recommender.bundle.n_candidates)
    offline = apply_policy(recommender.points[1].policy, candidates, recommender.bundle.context())
    assert [item.item_id for item in result.items] == [recommender.item_id(c) for c in offline[0]]
    seen = {recommender.item_id(c) for c in model.seen[user].indices}
    assert not seen & {item.item_id for item in result.items}
    assert all(item.propensity == 1.0 for item in result.items)


def test_history_fold_in_equals_the_known_user(recommender: Recommender) -> None:
    model = recommender.model
    code = list(recommender.bundle.user_ids).index("u6")
    history = [recommender.item_id(c) for c in model.seen[code].indices]
    anonymous = recommender.recommend(history=history, point=0, k=5)
    known = recommender.recommend("u6", point=0, k=5)
    assert [i.item_id for i in anonymous.items] == [i.item_id for i in known.items]
    assert not anonymous.known_user and anonymous.fallback is None


def test_unknown_user_gets_popularity_and_exclude_is_honoured(recommender: Recommender) -> None:
    result = recommender.recommend("nobody", point=0, k=5)
    assert result.fallback == "popularity" and not result.known_user
    popularity = recommender.bundle.popularity
    top = [recommender.item_id(c) for c in np.argsort(-popularity, kind="stable")[:5]]
    assert [i.item_id for i in result.items] == top
    excluded = recommender.recommend("nobody", point=0, k=5, exclude=[*top[:2], "unknown-id"])
    assert not {i.item_id for i in excluded.items} & set(top[:2])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"point": 99}, "point must be a front point id in 0..6, got 99"),
        ({"point": "best"}, "point must be a front point id"),
        ({"point": 1, "preference": {"ndcg": 1}}, "at most one of point, preference"),
        ({"preference": {"speed": 1}}, "'speed' is not one of the objective names"),
        ({"preference": {"ndcg": -1}}, "non-negative"),
        ({"constraints": ["ndcg > 3"]}, "constraint must read"),
        ({"constraints": ["ild <= 0.5"]}, "must be a bound '>='"),
        ({"constraints": ["ndcg >= 10"]}, "no front point meets the constraints"),
        ({"k": 0}, "k must be a positive int"),
        ({"k": 101}, "k must be at most 100"),
        ({"history": ["m1", "nope"]}, "history holds unknown item id 'nope'"),
        ({"point": "auto"}, "needs an online chooser"),
    ],
)
def test_bad_requests(recommender: Recommender, kwargs, message) -> None:
    with pytest.raises(ParetorecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        recommender.recommend("u0", **kwargs)


def test_auto_point_logs_the_bandit_propensity(tiny_bundle: Path) -> None:
    recommender = Recommender(tiny_bundle, encoder=WordEncoder())
    recommender.auto_chooser = lambda context: (2, 0.25)
    result = recommender.recommend("u0", point="auto")
    assert result.point["id"] == 2 and result.point["chosen_by"] == "auto"
    assert {item.propensity for item in result.items} == {0.25}


def test_added_item_reaches_a_cold_start_user_with_matching_history(tiny_bundle: Path) -> None:
    recommender = Recommender(tiny_bundle, encoder=WordEncoder())
    history = ["m31", "m35", "m40"]  # cookery
    text = " ".join(recommender.title(h) for h in history)  # the history's own words
    before = recommender.recommend(history=history, k=10)
    assert "new-cook" not in {i.item_id for i in before.items}
    status = recommender.add_items([{"item_id": "new-cook", "text": text, "title": "New cook"}])
    assert status == [{"item_id": "new-cook", "status": "created"}]
    after = recommender.recommend(history=history, k=10)
    assert "new-cook" in {i.item_id for i in after.items}
    space = recommender.recommend(history=["m1", "m2", "m3"], k=10)
    assert "new-cook" not in {i.item_id for i in space.items}
    again = recommender.add_items([{"item_id": "new-cook", "text": "rocket galaxy"}])
    assert again[0]["status"] == "updated" and recommender.n_items == 61
    # a user known only by the new item is ranked by text
    only_new = recommender.recommend(history=["new-cook"], k=5)
    assert only_new.fallback == "text" and len(only_new.items) == 5


def test_explanations_cite_history_and_pass_the_deletion_test(recommender: Recommender) -> None:
    result = recommender.recommend("u1", point=4, explain=True, k=5)
    first = result.items[0].explanation
    assert first is not None and first["history"] and first["policy"]
    code = list(recommender.bundle.user_ids).index("u1")
    history = {recommender.item_id(c) for c in recommender.model.seen[code].indices}
    assert {c["item_id"] for item in result.items for c in item.explanation["history"]} <= history
    assert any("novelty boost" in item.explanation["policy"] for item in result.items)
    report = explanation_fidelity(recommender, [f"u{i}" for i in range(0, 40, 3)], k=5)
    assert report["checked"] > 20 and report["pass_rate"] >= 0.95


def test_ranker_bundle_fuses_task_probabilities(tiny_bundle_ranker: Path) -> None:
    recommender = Recommender(tiny_bundle_ranker, encoder=WordEncoder())
    known = recommender.recommend("u2", explain=True, k=5)
    assert set(known.items[0].explanation["ranker"]) == {"engage", "like", "rating"}
    anonymous = recommender.recommend(history=["m1", "m2"], explain=True, k=5)
    assert 0 <= anonymous.items[0].explanation["ranker"]["like"] <= 1


# small, fast fits on purpose: not meant to converge
@pytest.mark.filterwarnings("ignore::paretorec.models.ConvergenceWarning")
@pytest.mark.parametrize("model", ["bpr", "sequential"])
def test_deletion_explanations_for_a_non_linear_model(tmp_path: Path, model: str) -> None:
    """BPR (gradient steps) and the sequential model (the sequence) fold a history in:
    explanations delete history items."""
    bundle = build_tiny_bundle(tmp_path / model, model=model)
    recommender = Recommender(bundle, encoder=WordEncoder())
    listed = recommender.recommend("u3", explain=True, k=5, point=0)
    assert any(item.explanation["history"] for item in listed.items)
    report = explanation_fidelity(recommender, ["u3", "u4", "u9"], k=5, point=0)
    assert report["checked"] > 0 and report["pass_rate"] >= 0.95


def test_exposure_penalty_counts_the_lists_served(tiny_bundle: Path) -> None:
    """A request is a batch of one: the service counts placements in its recent lists."""
    from dataclasses import replace

    from paretorec.ranking import Policy

    recommender = Recommender(tiny_bundle, encoder=WordEncoder())
    plain = {tuple(i.item_id for i in recommender.recommend("nobody", point=0).items)}
    assert (
        len(plain | {tuple(i.item_id for i in recommender.recommend("nobody", point=0).items)}) == 1
    )
    penalised = replace(recommender.points[0], policy=Policy(k=5, exposure_penalty=2.0))
    recommender.points = (penalised, *recommender.points[1:])
    shown = [
        tuple(i.item_id for i in recommender.recommend("nobody", point=0).items) for _ in range(6)
    ]
    assert len(set(shown)) > 1 and len({item for items in shown for item in items}) > 10
    assert recommender.exposure_window == 20  # half of the 40 training users


def test_warm_up_leaves_no_trace(tiny_bundle: Path) -> None:
    recommender = Recommender(tiny_bundle, encoder=WordEncoder())
    recommender.warm_up()
    assert not recommender._exposure_lists and not recommender._exposure_counts.any()
