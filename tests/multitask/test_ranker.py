"""MultiTaskRanker (save/load, predictions, config), funnel rows, features, TrainConfig."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from paretorec import ParetorecError
from paretorec.data import Dataset
from paretorec.multitask import (
    STRATEGIES,
    FeatureSpec,
    MultiTaskRanker,
    TaskSpec,
    TrainConfig,
    encode_features,
    funnel_rows,
    run_training,
)
from tests._float32 import assert_close_f32

from .test_models import FAST, make_funnel_dataset

FAST_RANKER: dict[str, Any] = {
    "embedding_dim": 8,
    "tower_units": (8,),
    "epochs": 3,
    "batch_size": 128,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def data() -> tuple[Dataset, pd.DataFrame, pd.DataFrame]:
    dataset = make_funnel_dataset()
    rows = funnel_rows(dataset, seed=0)
    rows["hour"] = np.arange(len(rows)) % 24  # a row-level dense feature
    shuffled = rows.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return (
        dataset,
        shuffled.iloc[:600].reset_index(drop=True),
        shuffled.iloc[600:].reset_index(drop=True),
    )


@pytest.fixture(scope="module")
def fitted(data: Any) -> MultiTaskRanker:
    dataset, train, valid = data
    options = {
        **FAST_RANKER,
        "epochs": 20,
        "lr": 1e-2,
        "batch_size": 32,
        "monitor_task": "like",
        "patience": None,
    }
    return MultiTaskRanker("mmoe", **options).fit(train, valid, dataset=dataset)


# --------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("architecture", sorted(FAST))
def test_save_load_round_trip_gives_identical_predictions(
    data: Any, architecture: str, tmp_path: Path
) -> None:
    dataset, train, valid = data
    vectors = np.random.default_rng(0).normal(size=(dataset.n_items, 5)).astype(np.float32)
    features = FeatureSpec.infer(dataset)
    features = FeatureSpec(**{**features.to_dict(), "row_dense": ["hour"], "user_history": "rated"})
    ranker = MultiTaskRanker(
        architecture,
        architecture_params=FAST[architecture],
        features=features,
        fm=True,
        **FAST_RANKER,
    ).fit(train, valid, dataset=dataset, item_vectors=vectors)
    ranker.save(tmp_path / "ranker")
    loaded = MultiTaskRanker.load(tmp_path / "ranker")
    expected, got = ranker.predict(valid), loaded.predict(valid)
    assert list(got) == list(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
    assert loaded.get_params() == ranker.get_params()
    assert repr(loaded) == repr(ranker)
    assert loaded.history.to_dict() == ranker.history.to_dict()
    assert loaded.features_ is not None and ranker.features_ is not None
    assert loaded.features_.schema() == ranker.features_.schema()
    for name, table in ranker.features_.tables.items():
        np.testing.assert_array_equal(loaded.features_.tables[name], table)


def test_load_refuses_other_artifacts(tmp_path: Path) -> None:
    from paretorec._artifacts import write_artifact

    write_artifact(tmp_path / "other", {"format": "something-else"}, {"x": np.zeros(1)})
    with pytest.raises(ParetorecError, match="holds a 'something-else' artifact"):
        MultiTaskRanker.load(tmp_path / "other")


def test_params_rebuild_the_same_ranker(fitted: MultiTaskRanker) -> None:
    params = json.loads(json.dumps(fitted.get_params()))
    assert MultiTaskRanker(**params).get_params() == fitted.get_params()


def test_repr_is_readable(fitted: MultiTaskRanker) -> None:
    text = repr(fitted)
    assert text.startswith(
        "MultiTaskRanker(architecture='mmoe', tasks=[engage:binary, like:binary where rated, rating:regression where rated], strategy='fixed'"
    )
    assert re.search(r"fitted: \d+ epochs, best like_auc=\d\.\d{4}\)$", text)
    assert repr(MultiTaskRanker()).endswith(", unfitted)")


# --------------------------------------------------------------------------- predictions
def test_predictions_are_probabilities_and_clipped_values(
    fitted: MultiTaskRanker, data: Any
) -> None:
    _, _, valid = data
    p = fitted.predict(valid)
    assert set(p) == {"engage", "like", "rating"}
    for name in ("engage", "like"):
        assert p[name].shape == (len(valid),) and ((p[name] > 0) & (p[name] < 1)).all()
    assert ((p["rating"] >= 1) & (p["rating"] <= 5)).all()


def test_predict_pairs_equals_predict_and_broadcasts(fitted: MultiTaskRanker, data: Any) -> None:
    _, _, valid = data
    ranker = MultiTaskRanker("mmoe", **FAST_RANKER)
    dataset = make_funnel_dataset()
    ranker.fit(valid, dataset=dataset)  # no row-level features, so pairs suffice
    expected = ranker.predict(valid)
    pairs = ranker.predict_pairs(valid["user"].to_numpy(), valid["item"].to_numpy())
    for key in expected:
        assert_close_f32(pairs[key], expected[key])
    grid = ranker.predict_pairs(np.array([0, 1, 2]), np.array([[0, 1], [2, 3], [4, 5]]))
    assert grid["like"].shape == (3, 2)
    single = ranker.predict_pairs([1], [2])["like"][0]
    assert_close_f32(grid["like"][0, 1], ranker.predict_pairs([0], [1])["like"][0])
    assert_close_f32(grid["like"][1, 0], single)


def test_evaluate_reports_each_task(fitted: MultiTaskRanker, data: Any) -> None:
    _, _, valid = data
    metrics = fitted.evaluate(valid)
    assert set(metrics) == {
        "engage_auc",
        "engage_logloss",
        "like_auc",
        "like_logloss",
        "rating_rmse",
    }
    assert 0.5 < metrics["like_auc"] <= 1 and metrics["rating_rmse"] < 3


def test_esmm_predicts_ctcvr(data: Any) -> None:
    dataset, train, valid = data
    ranker = MultiTaskRanker("esmm", **FAST_RANKER).fit(train, dataset=dataset)
    p = ranker.predict(valid)
    assert_close_f32(p["ctcvr"], p["engage"] * p["like"])
    from sklearn.metrics import roc_auc_score

    clicked_and_liked = valid["engage"] * valid["like"].fillna(0.0)
    metrics = ranker.evaluate(valid)
    assert metrics["ctcvr_auc"] == pytest.approx(roc_auc_score(clicked_and_liked, p["ctcvr"]))


# --------------------------------------------------------------------------- funnel rows
def test_funnel_rows_are_rated_pairs_plus_unrated_samples() -> None:
    dataset = make_funnel_dataset()
    rows = funnel_rows(dataset, negatives_per_positive=2, seed=3)
    n = dataset.n_interactions
    assert len(rows) == 3 * n
    rated, sampled = rows.iloc[:n], rows.iloc[n:]
    assert rated["rated"].all() and not sampled["rated"].any()
    assert (rated["engage"] == 1).all() and (sampled["engage"] == 0).all()
    np.testing.assert_array_equal(
        rated["like"], (dataset.interactions["rating"] >= 4).astype(float)
    )
    assert sampled["like"].isna().all() and sampled["rating"].isna().all()
    seen = set(zip(dataset.interactions["user"], dataset.interactions["item"], strict=True))
    assert not any(pair in seen for pair in zip(sampled["user"], sampled["item"], strict=True))
    pd.testing.assert_frame_equal(rows, funnel_rows(dataset, negatives_per_positive=2, seed=3))
    assert not rows.equals(funnel_rows(dataset, negatives_per_positive=2, seed=4))


def test_funnel_rows_exclude_pairs_rated_elsewhere() -> None:
    dataset = make_funnel_dataset()
    part = dataset.with_interactions(dataset.interactions.iloc[::2])
    rows = funnel_rows(part, negatives_per_positive=3, exclude=dataset, seed=0)
    seen = set(zip(dataset.interactions["user"], dataset.interactions["item"], strict=True))
    sampled = rows[~rows["rated"]]
    assert not any(pair in seen for pair in zip(sampled["user"], sampled["item"], strict=True))


# --------------------------------------------------------------------------- features
def test_feature_inference_on_movielens(ml100k: Dataset) -> None:
    spec = FeatureSpec.infer(ml100k)
    assert set(spec.user_categorical) == {"gender", "occupation", "age_band"}
    assert spec.item_multi == ("genres",)
    assert spec.user_dense == ("age",) and spec.item_dense == ("year",)
    assert spec.item_categorical == ()  # titles, dates and URLs are too many-valued


def test_dense_features_are_standardised_with_training_rows(data: Any) -> None:
    dataset, train, _ = data
    spec = FeatureSpec(user_dense=("age",), row_dense=("hour",))
    encoded = encode_features(spec, dataset, train)
    age = encoded.tables["user_dense"][train["user"].to_numpy(), 0]
    assert age.mean() == pytest.approx(0, abs=1e-5) and age.std() == pytest.approx(1, abs=1e-4)
    hour = encoded.row_dense(train)[:, 0]
    assert hour.mean() == pytest.approx(0, abs=1e-5) and hour.std() == pytest.approx(1, abs=1e-4)


def test_missing_categories_share_the_unknown_code() -> None:
    dataset = make_funnel_dataset()
    users = dataset.users.copy()
    users.loc[3, "segment"] = None
    dataset = Dataset(
        name="x", interactions=dataset.interactions, user_ids=dataset.user_ids,
        item_ids=dataset.item_ids, items=dataset.items, users=users,
        label_columns=dataset.label_columns,
    )  # fmt: skip
    rows = funnel_rows(dataset, seed=0)
    encoded = encode_features(
        FeatureSpec(user_id=False, user_categorical=("segment",)), dataset, rows
    )
    codes = encoded.tables["user_fields"][:, 0]
    assert codes[3] == 0 and set(codes[:3]) == {1, 2}
    assert encoded.vocabularies["user.segment"] == ["a", "b"]


# --------------------------------------------------------------------------- config
TOML = """
name = "tiny"
output_dir = "{out}"

[data]
validation_ratio = 0.75

[rows]
negatives_per_positive = 2

[model]
architecture = "ple"
embedding_dim = 8
tower_units = [8]
params = {{ n_levels = 2, expert_units = [16] }}

[strategy]
name = "fixed"
params = {{ weights = [1.0, 1.0, 0.5] }}

[trainer]
epochs = 2
batch_size = 256
monitor_task = "rating"
device = "cpu"
progress = false
"""


def test_run_training_writes_model_and_metrics(tmp_path: Path) -> None:
    path = tmp_path / "train.toml"
    path.write_text(TOML.format(out=(tmp_path / "run").as_posix()))
    config = TrainConfig.from_toml(path)
    assert config.model.params == {"n_levels": 2, "expert_units": [16]}
    dataset = make_funnel_dataset(n_users=60, per_user=12)
    result = run_training(config, dataset=dataset)
    assert result["rows"]["train"] > 0 and result["monitor"] == "rating_rmse"
    assert set(result["test"]) == {
        "engage_auc",
        "engage_logloss",
        "like_auc",
        "like_logloss",
        "rating_rmse",
    }
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test"] == result["test"] and saved["config"]["model"]["architecture"] == "ple"
    ranker = MultiTaskRanker.load(tmp_path / "run" / "model")
    assert ranker.architecture == "ple" and ranker.strategy_params == {"weights": [1.0, 1.0, 0.5]}


def test_interaction_rows_use_the_dataset_labels(tmp_path: Path) -> None:
    config = TrainConfig.from_dict(
        {
            "rows": {"kind": "interactions"},
            "tasks": [{"name": "rating", "kind": "regression", "value_range": [1, 5]}],
            "model": {"architecture": "shared_bottom", "embedding_dim": 4},
            "trainer": {"epochs": 1, "device": "cpu", "progress": False},
        }
    )
    result = run_training(config, dataset=make_funnel_dataset(), save=False)
    assert set(result["test"]) == {"rating_rmse"} and "output_dir" not in result


BAD_CONFIGS = [
    ({"trainer": {"epoch": 3}}, "config: unknown field 'trainer.epoch'"),
    ({"model": {"architecture": "dcn"}}, "config: field 'model.architecture': Input should be"),
    (
        {"model": {"params": {"n_expert": 2}}},
        "config: architecture_params has unknown option(s) ['n_expert'] for 'mmoe'",
    ),
    ({"strategy": {"name": "magic"}}, "config: strategy must be one of"),
    (
        {"trainer": {"monitor_task": "click"}},
        "config: monitor_task must be one of 'engage', 'like', 'rating'; got 'click'",
    ),
    ({"tasks": [{"name": "x", "kind": "ordinal"}]}, "config: field 'tasks.0.kind'"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_CONFIGS)
def test_bad_configs_give_clear_errors(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ParetorecError, match=re.escape(message)):
        TrainConfig.from_dict(raw)


def test_config_file_errors(tmp_path: Path) -> None:
    from paretorec import DataFileError

    with pytest.raises(DataFileError, match="config: file not found"):
        TrainConfig.from_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[trainer\nepochs = 1")
    with pytest.raises(DataFileError, match="is not valid TOML"):
        TrainConfig.from_toml(bad)


# --------------------------------------------------------------------------- bad inputs
BAD_RANKERS = [
    (
        {"architecture": "transformer"},
        "architecture must be one of 'shared_bottom', 'mmoe', 'ple', 'esmm'; got 'transformer'",
    ),
    ({"strategy": "magic"}, "strategy must be one of 'fixed'"),
    ({"strategy_params": {"weights": [1.0]}}, "weights must have one entry per task (3), got 1"),
    (
        {"architecture_params": {"n_expert": 2}},
        "architecture_params has unknown option(s) ['n_expert'] for 'mmoe'; options are ['n_experts', 'expert_units']",
    ),
    ({"tasks": []}, "tasks must be a non-empty list of TaskSpec, got []"),
    (
        {"tasks": [TaskSpec("a"), TaskSpec("a")]},
        "task names must be unique, got ['a'] more than once",
    ),
    (
        {"tasks": [{"name": "a", "kind": "ordinal"}]},
        "kind of task 'a' must be one of 'binary', 'regression'; got 'ordinal'",
    ),
    ({"tasks": [{"name": "a", "colour": "red"}]}, "task has unknown field(s) ['colour']"),
    (
        {"monitor_metric": "ndcg"},
        "monitor_metric must be one of 'auc', 'logloss', 'rmse', 'loss'; got 'ndcg'",
    ),
    (
        {"monitor_task": "rating", "monitor_metric": "auc"},
        "monitor_metric 'auc' does not apply to the regression task 'rating'",
    ),
    ({"embedding_dim": -4}, "embedding_dim must be a positive int, got -4"),
    ({"features": {"user_colour": ["x"]}}, "features has unknown field(s) ['user_colour']"),
    ({"features": 3}, "features must be a FeatureSpec, a dict or None, got int"),
    ({"device": "tpu"}, "device must be one of 'auto', 'cpu', 'cuda'; got 'tpu'"),
]


@pytest.mark.parametrize(("options", "message"), BAD_RANKERS)
def test_bad_ranker_options_give_clear_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ParetorecError, match=re.escape(message)):
        MultiTaskRanker(**options)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            lambda: TaskSpec("r", "binary", value_range=(1, 5)),
            "value_range applies to regression tasks only; task 'r' is 'binary'",
        ),
        (
            lambda: TaskSpec("r", "regression", value_range=(5, 1)),
            "value_range of task 'r' must be finite with low < high, got (5, 1)",
        ),
        (lambda: TaskSpec(""), "task name must be a non-empty str, got ''"),
        (
            lambda: FeatureSpec(user_categorical="gender"),
            "user_categorical must be a list of column names, got 'gender'",
        ),
    ],
)
def test_bad_specs_give_clear_errors(spec: Any, message: str) -> None:
    with pytest.raises(ParetorecError, match=re.escape(message)):
        spec()


BAD_ROWS = [
    (
        lambda rows: rows.drop(columns="like"),
        "train_rows lack the label column 'like' of task 'like'",
    ),
    (
        lambda rows: rows.drop(columns="rated"),
        "train_rows lack the mask column 'rated' of task 'like'",
    ),
    (
        lambda rows: rows.assign(engage=rows["engage"].where(rows.index != 4, 2.0)),
        "label column 'engage' of binary task 'engage' must hold 0 or 1, got 2.0",
    ),
    (
        lambda rows: rows.assign(engage=rows["engage"].where(rows.index != 3, np.nan)),
        "label column 'engage' of task 'engage' must be numeric and finite where the label exists; row 3 holds nan (give the task a mask_column if it is missing)",
    ),
    (
        lambda rows: rows.assign(user=rows["user"].where(rows.index != 0, 99)),
        "train_rows column 'user' holds code 99 outside 0..39 (the dataset has 40 users)",
    ),
    (
        lambda rows: rows.assign(item=rows["item"].astype(float)),
        "train_rows column 'item' must hold integer codes, got dtype float64",
    ),
    (
        lambda rows: rows.drop(columns="user"),
        "train_rows must have integer code columns 'user' and 'item'; missing ['user']",
    ),
    (
        lambda rows: rows.assign(rated=rows["rated"].astype(int) * 2),
        "mask column 'rated' of task 'like' must be boolean (or 0/1), got 2",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_ROWS)
def test_bad_rows_give_clear_errors(data: Any, change: Any, message: str) -> None:
    dataset, train, _ = data
    ranker = MultiTaskRanker("mmoe", **{**FAST_RANKER, "epochs": 1})
    with pytest.raises(ParetorecError, match=re.escape(message)):
        ranker.fit(change(train), dataset=dataset)


def test_bad_fit_and_predict_calls_give_clear_errors(fitted: MultiTaskRanker, data: Any) -> None:
    dataset, train, valid = data
    with pytest.raises(
        ParetorecError, match=re.escape("MultiTaskRanker is not fitted; call fit(...) first")
    ):
        MultiTaskRanker().predict(valid)
    with pytest.raises(
        ParetorecError, match=re.escape("dataset must be a paretorec Dataset, got DataFrame")
    ):
        MultiTaskRanker(**FAST_RANKER).fit(train, dataset=train)  # type: ignore[arg-type]
    with pytest.raises(
        ParetorecError,
        match=re.escape(
            "users and items must have the same shape (or users one entry per row of a 2-D items), got (3,) and (2,)"
        ),
    ):
        fitted.predict_pairs([0, 1, 2], [0, 1])
    with pytest.raises(
        ParetorecError, match=re.escape("items holds unknown index 30; valid indices are 0..29")
    ):
        fitted.predict_pairs([0], [30])
    with pytest.raises(
        ParetorecError,
        match=re.escape(
            "item_vectors must be a matrix with one row per item (30, d), got shape (29, 4)"
        ),
    ):
        MultiTaskRanker(**FAST_RANKER).fit(train, dataset=dataset, item_vectors=np.zeros((29, 4)))
    with pytest.raises(
        ParetorecError, match=re.escape("user feature column 'height' is not in the user table")
    ):
        MultiTaskRanker(features={"user_dense": ["height"]}, **FAST_RANKER).fit(
            train, dataset=dataset
        )
    with pytest.raises(
        ParetorecError, match=re.escape("rows lack the dense feature column 'hour'")
    ):
        ranker = MultiTaskRanker(features={"row_dense": ["hour"]}, **FAST_RANKER).fit(
            train, dataset=dataset
        )
        ranker.predict(valid.drop(columns="hour"))


# --------------------------------------------------------------------------- Pareto ranker
def test_fit_ranker_learns_from_the_training_part_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from paretorec.data import stratified_split
    from paretorec.multitask import RankerSection, evaluate_ranker, fit_ranker

    dataset = make_funnel_dataset(n_users=60, per_user=12)
    split = stratified_split(dataset, ratio=0.75, seed=0)
    train_pairs = set(
        zip(split.train.interactions["user"], split.train.interactions["item"], strict=True)
    )
    held_out = set(
        zip(split.test.interactions["user"], split.test.interactions["item"], strict=True)
    )
    seen_rows: list[pd.DataFrame] = []
    original = MultiTaskRanker.fit

    def spy(self: MultiTaskRanker, train: pd.DataFrame, valid: Any = None, **kw: Any) -> Any:
        seen_rows.append(train)
        if valid is not None:
            seen_rows.append(valid)
        return original(self, train, valid, **kw)

    monkeypatch.setattr(MultiTaskRanker, "fit", spy)
    settings = RankerSection(
        model={"architecture": "mmoe", "embedding_dim": 8, "tower_units": (8,)},  # type: ignore[arg-type]
        trainer={"epochs": 30, "lr": 1e-2, "batch_size": 128, "device": "cpu", "progress": False},  # type: ignore[arg-type]
    )
    ranker = fit_ranker(settings, dataset, split.train)
    assert len(seen_rows) == 3  # fit + its early-stopping rows, then the refit
    for rows in seen_rows:  # positives (and their labels) come from the training part only
        rated = set(
            zip(rows.loc[rows["rated"], "user"], rows.loc[rows["rated"], "item"], strict=True)
        )
        assert rated <= train_pairs and not (rated & held_out)
    early_stopping = seen_rows[1]
    unrated = early_stopping.loc[~early_stopping["rated"]]
    assert not set(zip(unrated["user"], unrated["item"], strict=True)) & train_pairs
    refit_rated = seen_rows[2].loc[seen_rows[2]["rated"]]
    assert len(refit_rated) == split.train.n_interactions
    refit = ranker.get_params()
    assert refit["patience"] is None and 1 <= refit["epochs"] < 30  # the epoch count chosen
    metrics = evaluate_ranker(ranker, settings, dataset, split.test)
    assert {"engage_auc", "like_auc", "rating_rmse"} <= set(metrics)
    assert metrics["like_auc"] > 0.7  # like is a function of segment x genre


BAD_SECTIONS = [
    ({"sources": ["rating"]}, "sources must name binary tasks"),
    ({"sources": ["click"]}, "got 'click'; binary tasks: ['engage', 'like']"),
    ({"rows": {"kind": "interactions"}}, "rows.kind must be 'funnel'"),
    ({"trainer": {"monitor_task": "x"}}, "monitor_task must be one of"),
    ({"validation_ratio": 1.5}, "field 'ranker.validation_ratio': Input should be less"),
    ({"epochs": 3}, "unknown field 'ranker.epochs'"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_SECTIONS)
def test_pareto_ranker_section_errors_name_the_field(raw: dict[str, Any], message: str) -> None:
    from paretorec.config import ParetoConfig

    with pytest.raises(ParetorecError, match=re.escape(message)):
        ParetoConfig.from_dict({"ranker": raw})


def test_pareto_ranker_section_defaults_and_round_trip() -> None:
    from paretorec.config import ParetoConfig
    from paretorec.multitask import RankerSection

    config = ParetoConfig.from_dict({"ranker": {"model": {"architecture": "ple"}}})
    assert isinstance(config.ranker, RankerSection)
    assert config.ranker.source_names() == ("engage", "like") and config.ranker.refit
    again = ParetoConfig.from_dict(config.model_dump(mode="json"))
    assert again.ranker == config.ranker
    assert ParetoConfig.from_dict({}).ranker is None


def test_uncertainty_weighting_gets_the_task_kinds() -> None:
    from paretorec.multitask import funnel_tasks

    ranker = MultiTaskRanker("mmoe", funnel_tasks(), strategy="uncertainty")
    assert ranker._strategy().get_params()["task_kinds"] == [
        "classification",
        "classification",
        "regression",
    ]
    given = MultiTaskRanker(
        "mmoe",
        funnel_tasks(),
        strategy="uncertainty",
        strategy_params={"task_kinds": ["regression"] * 3},
    )
    assert given._strategy().get_params()["task_kinds"] == ["regression"] * 3


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("architecture", sorted(FAST))
def test_train_config_runs_every_architecture_with_every_strategy(
    architecture: str, strategy: str, funnel_dataset: Dataset
) -> None:
    config = TrainConfig.from_dict(
        {
            "model": {
                "architecture": architecture,
                "embedding_dim": 4,
                "tower_units": [4],
                "params": FAST[architecture],
            },
            "strategy": {"name": strategy},
            "trainer": {"epochs": 1, "batch_size": 256, "device": "cpu", "progress": False},
        }
    )
    result = run_training(config, dataset=funnel_dataset, save=False)
    assert (result["architecture"], result["strategy"]) == (architecture, strategy)
    assert {"engage_auc", "like_auc", "rating_rmse"} <= set(result["test"])
    assert all(np.isfinite(result["test"][k]) for k in ("engage_auc", "rating_rmse"))


@pytest.fixture(scope="module")
def funnel_dataset() -> Dataset:
    return make_funnel_dataset()


def test_fit_ranker_refuses_other_settings() -> None:
    from paretorec.multitask import fit_ranker

    dataset = make_funnel_dataset()
    with pytest.raises(ParetorecError, match="settings must be a RankerSection, got TrainConfig"):
        fit_ranker(TrainConfig(), dataset, dataset)  # type: ignore[arg-type]


def test_fit_ranker_reuses_an_epoch_count_chosen_before() -> None:
    from paretorec.multitask import RankerSection, fit_ranker

    dataset = make_funnel_dataset(n_users=40, per_user=10)
    settings = RankerSection.model_validate(
        {"model": {"embedding_dim": 8, "tower_units": [8]},
         "trainer": {"epochs": 30, "batch_size": 128, "progress": False}}
    )  # fmt: skip
    ranker = fit_ranker(settings, dataset, dataset, epochs=2)
    assert ranker.get_params()["epochs"] == 2 and ranker.get_params()["patience"] is None
    assert len(ranker.history.epochs) == 2  # one fit, no early-stopping run of its own
