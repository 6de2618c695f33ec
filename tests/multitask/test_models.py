"""One contract for every multi-task architecture (STYLE 7), plus the building blocks."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from paretorec import ParetorecError
from paretorec.data import Dataset
from paretorec.multitask import (
    ARCHITECTURES,
    Batch,
    FeatureSpec,
    MultiTaskModel,
    TaskSpec,
    Trainer,
    build_model,
    encode_features,
    encode_rows,
    funnel_rows,
    funnel_tasks,
)
from paretorec.multitask._features import EncodedFeatures
from paretorec.multitask._models import StackedLinear, StackedMLP, _mix
from paretorec.multitask._trainer import label_means

# Small settings per architecture; every registered architecture must appear here.
FAST: dict[str, dict[str, Any]] = {
    "shared_bottom": {"bottom_units": (16,)},
    "mmoe": {"n_experts": 3, "expert_units": (16,)},
    "ple": {"n_levels": 2, "n_task_experts": 1, "n_shared_experts": 2, "expert_units": (16,)},
    "esmm": {},
}
COMMON: dict[str, Any] = {"embedding_dim": 8, "tower_units": (8,)}
# Variants whose shared-parameter bookkeeping differs (PLE depth, FM term, BatchNorm).
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    **{name: (name, params, {}) for name, params in FAST.items()},
    "ple-1-level": ("ple", {**FAST["ple"], "n_levels": 1}, {}),
    "ple-3-levels": ("ple", {**FAST["ple"], "n_levels": 3, "n_task_experts": 2}, {}),
    "mmoe-fm-bn": ("mmoe", FAST["mmoe"], {"fm": True, "batch_norm": True}),
    "esmm-fm": ("esmm", {}, {"fm": True, "id_bias": False}),
    "esmm-linear-heads-fm": ("esmm", {}, {"tower_units": (), "fm": True}),
    "shared_bottom-history": ("shared_bottom", FAST["shared_bottom"], {"history": True}),
}


def make_funnel_dataset(
    n_users: int = 40, n_items: int = 30, per_user: int = 10, seed: int = 0
) -> Dataset:
    """Two user segments with known tastes: segment a likes genre x, segment b genre y.

    Users mostly rate items of their genre (engage is learnable), rate them 5 and the others
    2 (like and rating are a function of segment x genre).
    """
    rng = np.random.default_rng(seed)
    half = n_items // 2
    rows = []
    for user in range(n_users):
        own = np.arange(half) if user % 2 == 0 else np.arange(half, n_items)
        other = np.arange(half, n_items) if user % 2 == 0 else np.arange(half)
        chosen = np.concatenate(
            [rng.choice(own, size=per_user - 2, replace=False), rng.choice(other, 2, replace=False)]
        )
        for position, item in enumerate(chosen):
            rating = 5.0 if (item < half) == (user % 2 == 0) else 2.0
            rows.append((user, int(item), rating, float(position)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    users = pd.DataFrame(
        {
            "user_id": np.arange(n_users),
            "segment": ["a" if u % 2 == 0 else "b" for u in range(n_users)],
            "age": 20.0 + np.arange(n_users),
        }
    )
    items = pd.DataFrame(
        {
            "item_id": np.arange(n_items),
            "genres": [("x",) if i < half else ("y", "z") for i in range(n_items)],
            "year": 1990.0 + np.arange(n_items) % 7,
        }
    )
    return Dataset.from_frames(
        "funnel-tiny",
        frame,
        timestamp_col="timestamp",
        label_columns=["rating"],
        users=users,
        items=items,
        label_ranges={"rating": (1, 5)},
    )


def make_setup(seed: int = 0) -> tuple[Dataset, pd.DataFrame, EncodedFeatures]:
    dataset = make_funnel_dataset(seed=seed)
    rows = funnel_rows(dataset, negatives_per_positive=1, seed=seed)
    features = encode_features(FeatureSpec.infer(dataset), dataset, rows)
    return dataset, rows, features


@pytest.fixture(scope="module")
def setup() -> tuple[Dataset, pd.DataFrame, EncodedFeatures]:
    return make_setup()


def make_model(
    variant: str, features: EncodedFeatures, rows: pd.DataFrame | None = None, seed: int = 0
) -> MultiTaskModel:
    """A small model of ``variant``; outputs start at the label means of ``rows`` if given."""
    architecture, params, common = VARIANTS[variant]
    if common.get("history"):
        common = {k: v for k, v in common.items() if k != "history"}
        features = encode_features(
            FeatureSpec(**{**features.spec.to_dict(), "user_history": "rated"}),
            make_funnel_dataset(),
            funnel_rows(make_funnel_dataset(), seed=0) if rows is None else rows,
        )
    torch.manual_seed(seed)
    model = build_model(
        architecture, features, funnel_tasks(), architecture_params=params, **{**COMMON, **common}
    )
    if rows is not None:
        model.set_output_bias(
            label_means(encode_rows(rows, features, funnel_tasks()), funnel_tasks())
        )
    return model


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_architecture_is_covered() -> None:
    assert set(ARCHITECTURES) == set(FAST)


# --------------------------------------------------------------------------- contract
def test_forward_gives_one_output_per_task(setup: Any, variant: str) -> None:
    _, rows, features = setup
    model = make_model(variant, features)
    batch = encode_rows(rows.iloc[:17], features, funnel_tasks())
    outputs = model(batch)
    expected = ["engage", "like", "rating"] + (["ctcvr"] if VARIANTS[variant][0] == "esmm" else [])
    assert list(outputs) == expected
    for value in outputs.values():
        assert value.shape == (17,) and torch.isfinite(value).all()
    probabilities = model.predictions(outputs)
    for name in ("engage", "like"):
        assert ((probabilities[name] >= 0) & (probabilities[name] <= 1)).all()
    assert ((probabilities["rating"] >= 1) & (probabilities["rating"] <= 5)).all()


def test_training_lowers_every_task_loss(setup: Any, variant: str) -> None:
    _, rows, features = setup
    model = make_model(variant, features, rows)
    data = encode_rows(rows, features, funnel_tasks())
    assert data.labels is not None and data.mask is not None

    def losses() -> np.ndarray:
        model.eval()
        with torch.no_grad():
            return model.task_losses(model(data), data.labels, data.mask).numpy()

    before = losses()
    trainer = Trainer(epochs=30, batch_size=64, lr=1e-2, device="cpu", progress=False)
    trainer.fit(model, data)
    after = losses()
    assert (after < 0.9 * before).all(), f"{variant}: losses {before} -> {after}"
    # Like and rating are a function of segment x genre: learnable almost exactly.
    assert after[1] < 0.35 and after[2] < 0.1, f"{variant}: losses {before} -> {after}"


def test_masked_labels_have_no_effect(setup: Any, variant: str) -> None:
    _, rows, features = setup
    model = make_model(variant, features)
    model.train(False)  # no dropout noise between the two passes
    batch = encode_rows(rows, features, funnel_tasks())
    assert batch.labels is not None and batch.mask is not None
    results = []
    for garbage in (0.0, math.nan, 1e6):
        labels = torch.where(batch.mask, batch.labels, torch.full_like(batch.labels, garbage))
        model.zero_grad()
        loss = model.task_losses(model(batch), labels, batch.mask)
        loss.sum().backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((loss.detach(), grads))
    for loss, grads in results[1:]:
        torch.testing.assert_close(loss, results[0][0])
        for a, b in zip(grads, results[0][1], strict=True):
            torch.testing.assert_close(a, b)
            assert torch.isfinite(a).all()


def test_shared_parameters_are_exactly_those_several_losses_reach(setup: Any, variant: str) -> None:
    """A parameter is shared iff two tasks' loss gradients overlap on one of its entries."""
    _, rows, features = setup
    model = make_model(variant, features)
    batch = encode_rows(rows, features, funnel_tasks())
    assert batch.labels is not None
    mask = torch.ones_like(batch.labels, dtype=torch.bool)  # every loss sees every row
    labels = torch.where(torch.isfinite(batch.labels), batch.labels, 0.0).clamp(0, 1)
    params = dict(model.named_parameters())
    losses = model.task_losses(model(batch), labels, mask)
    per_task = [
        torch.autograd.grad(losses[k], list(params.values()), retain_graph=True, allow_unused=True)
        for k in range(len(losses))
    ]
    reached = {}
    for j, name in enumerate(params):
        touched = [g[j] is not None and bool((g[j] != 0).any()) for g in per_task]
        overlap = False
        for a in range(len(per_task)):
            for b in range(a + 1, len(per_task)):
                ga, gb = per_task[a][j], per_task[b][j]
                if ga is not None and gb is not None and bool(((ga != 0) & (gb != 0)).any()):
                    overlap = True
        reached[name] = (overlap, any(touched))
    shared = {id(p) for p in model.shared_parameters()}
    for name, param in params.items():
        overlap, touched = reached[name]
        assert touched, f"{variant}: {name} receives no gradient"
        assert overlap == (id(param) in shared), (
            f"{variant}: {name} overlap={overlap} but shared={id(param) in shared}"
        )


def test_last_shared_matrix_is_the_top_shared_layer(setup: Any, variant: str) -> None:
    """GradNorm measures on the last matrix of shared_parameters(): a stacked layer weight."""
    _, _, features = setup
    model = make_model(variant, features)
    matrices = [p for p in model.shared_parameters() if p.ndim >= 2]
    names = {id(p): name for name, p in model.named_parameters()}
    top = names[id(matrices[-1])]
    assert matrices[-1].ndim == 3 and top.endswith("weight"), top
    assert not top.startswith("inputs."), top


def test_esmm_ctcvr_is_ctr_times_cvr(setup: Any) -> None:
    _, rows, features = setup
    model = make_model("esmm", features)
    batch = encode_rows(rows, features, funnel_tasks())
    with torch.no_grad():
        p = model.predictions(model(batch))
    torch.testing.assert_close(p["ctcvr"], p["engage"] * p["like"], rtol=1e-5, atol=1e-6)


def test_esmm_losses_are_ctr_and_ctcvr_over_the_entire_space(setup: Any) -> None:
    _, rows, features = setup
    model = make_model("esmm", features)
    batch = encode_rows(rows, features, funnel_tasks())
    assert batch.labels is not None and batch.mask is not None
    with torch.no_grad():
        outputs = model(batch)
        losses = model.task_losses(outputs, batch.labels, batch.mask)
    engage = batch.labels[:, 0]
    ctcvr_label = engage * torch.where(batch.mask[:, 1], batch.labels[:, 1], 0.0)
    expected_ctr = F.binary_cross_entropy(torch.sigmoid(outputs["engage"]), engage)
    p_ctcvr = torch.sigmoid(outputs["engage"]) * torch.sigmoid(outputs["like"])
    expected_ctcvr = F.binary_cross_entropy(p_ctcvr, ctcvr_label)
    torch.testing.assert_close(losses[0], expected_ctr, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(losses[1], expected_ctcvr, rtol=1e-4, atol=1e-5)


def test_losses_match_a_reference_on_labelled_rows(setup: Any) -> None:
    from sklearn.metrics import log_loss, mean_squared_error

    _, rows, features = setup
    model = make_model("mmoe", features)
    batch = encode_rows(rows, features, funnel_tasks())
    assert batch.labels is not None and batch.mask is not None
    with torch.no_grad():
        outputs = model(batch)
        losses = model.task_losses(outputs, batch.labels, batch.mask).numpy()
    rated = rows["rated"].to_numpy()
    engage_p = torch.sigmoid(outputs["engage"]).numpy().astype(np.float64)
    like_p = torch.sigmoid(outputs["like"]).numpy().astype(np.float64)[rated]
    assert losses[0] == pytest.approx(log_loss(rows["engage"], engage_p), rel=1e-4)
    assert losses[1] == pytest.approx(log_loss(rows["like"][rated], like_p), rel=1e-4)
    rating = outputs["rating"].numpy()[rated]
    assert losses[2] == pytest.approx(mean_squared_error(rows["rating"][rated], rating), rel=1e-4)


def test_a_task_without_labelled_rows_contributes_zero(setup: Any) -> None:
    _, rows, features = setup
    model = make_model("mmoe", features)
    negatives = encode_rows(rows[~rows["rated"]].iloc[:20], features, funnel_tasks())
    assert negatives.labels is not None and negatives.mask is not None
    losses = model.task_losses(model(negatives), negatives.labels, negatives.mask)
    assert losses[0] > 0 and losses[1] == 0 and losses[2] == 0


# --------------------------------------------------------------------------- building blocks
@pytest.mark.parametrize("shared_input", [True, False])
def test_stacked_linear_equals_separate_linear_maps(shared_input: bool) -> None:
    layer = StackedLinear(3, 5, 4)
    x = torch.randn(7, 5) if shared_input else torch.randn(3, 7, 5)
    out = layer(x)
    for k in range(3):
        xk = x if shared_input else x[k]
        expected = xk @ layer.weight[k] + layer.bias.view(3, 4)[k]
        torch.testing.assert_close(out[k], expected)


def test_stacked_mlp_with_batch_norm_matches_per_network_batch_norm() -> None:
    mlp = StackedMLP(2, 5, (4,), batch_norm=True)
    x = torch.randn(9, 5)
    out = mlp(x)
    hidden = mlp.layers[0](x)
    for k in range(2):
        mean = hidden[k].mean(0)
        var = hidden[k].var(0, unbiased=False)
        expected = F.relu((hidden[k] - mean) / torch.sqrt(var + 1e-5))
        torch.testing.assert_close(out[k], expected, rtol=1e-4, atol=1e-5)


def test_mixture_equals_einsum() -> None:
    gates = torch.softmax(torch.randn(3, 6, 4), dim=2)
    experts = torch.randn(4, 6, 5)
    torch.testing.assert_close(_mix(gates, experts), torch.einsum("tbe,ebh->tbh", gates, experts))


def test_user_history_is_the_mean_of_the_other_history_items() -> None:
    dataset = make_funnel_dataset()
    rows = funnel_rows(dataset, seed=0)
    features = encode_features(FeatureSpec(user_history="rated"), dataset, rows)
    model = build_model("mmoe", features, funnel_tasks(), **COMMON)
    rated_item = int(rows["item"][0])  # a row of user 0 in the history
    user = torch.tensor([0, 0, 1, 5, 7])
    item = torch.tensor([rated_item, 29, 3, 7, 0])
    history = model.inputs.embed(Batch(user=user, item=item, dense=torch.zeros(5, 0)))[:, -1]
    assert model.inputs.history is not None
    weight = model.inputs.history.weight
    pairs = rows[rows["rated"]]
    for r in range(5):
        items = set(pairs["item"][pairs["user"] == int(user[r])]) - {int(item[r])}
        torch.testing.assert_close(history[r], weight[sorted(items)].mean(0))


def test_embedding_bag_ignores_padding_and_empty_items() -> None:
    dataset = make_funnel_dataset()
    items = dataset.items.copy()
    items.loc[0, "genres"] = ()
    dataset = Dataset(
        name="x",
        interactions=dataset.interactions,
        user_ids=dataset.user_ids,
        item_ids=dataset.item_ids,
        items=items,
        users=dataset.users,
        label_columns=dataset.label_columns,
    )
    rows = funnel_rows(dataset, seed=0)
    features = encode_features(FeatureSpec(item_multi=("genres",)), dataset, rows)
    model = build_model("mmoe", features, funnel_tasks(), **COMMON)
    bag = model.inputs.bags[0]
    batch = Batch(
        user=torch.tensor([0, 0, 0]), item=torch.tensor([0, 1, 20]), dense=torch.zeros(3, 0)
    )
    fields = model.inputs.embed(batch)
    genre = fields[:, -1]
    torch.testing.assert_close(genre[0], torch.zeros(8))  # no genres: zeros
    x, y, z = (features.vocabularies["item.genres"].index(g) for g in ("x", "y", "z"))
    torch.testing.assert_close(genre[1], bag.weight[x])
    torch.testing.assert_close(genre[2], (bag.weight[y] + bag.weight[z]) / 2)


# --------------------------------------------------------------------------- bad inputs
BAD_MODELS = [
    (
        "transformer",
        {},
        {},
        "architecture must be one of 'shared_bottom', 'mmoe', 'ple', 'esmm'; got 'transformer'",
    ),
    (
        "mmoe",
        {"n_expert": 4},
        {},
        "architecture_params has unknown option(s) ['n_expert'] for 'mmoe'; options are ['n_experts', 'expert_units']",
    ),
    ("mmoe", {"n_experts": 0}, {}, "n_experts must be a positive int, got 0"),
    ("mmoe", {"expert_units": ()}, {}, "expert_units must list at least one layer size, got ()"),
    ("ple", {"n_levels": -1}, {}, "n_levels must be a positive int, got -1"),
    (
        "shared_bottom",
        {"bottom_units": "64"},
        {},
        "bottom_units must be a list of positive ints, got '64'",
    ),
    (
        "esmm",
        {"ctr_task": "rating"},
        {},
        "ctr_task must name a binary task ('engage', 'like'); got 'rating'",
    ),
    (
        "esmm",
        {"ctr_task": "like", "cvr_task": "like"},
        {},
        "ctr_task and cvr_task must differ, got 'like' twice",
    ),
    (
        "esmm",
        {"ctcvr_name": "like"},
        {},
        "ctcvr_name must be a non-empty name that is not a task name, got 'like'",
    ),
    ("mmoe", {}, {"embedding_dim": 0}, "embedding_dim must be a positive int, got 0"),
    ("mmoe", {}, {"dropout": 1.5}, "dropout must be a number in [0, 1), got 1.5"),
    ("mmoe", {}, {"tower_units": [8, -1]}, "tower_units entry must be a positive int, got -1"),
    ("mmoe", {}, {"fm": "yes"}, "fm must be a bool, got 'yes'"),
    ("mmoe", {}, {"n_experts": 3}, "unknown model option(s) ['n_experts']; options are"),
]


@pytest.mark.parametrize(("architecture", "params", "common", "message"), BAD_MODELS)
def test_bad_model_options_give_clear_errors(
    setup: Any, architecture: str, params: dict[str, Any], common: dict[str, Any], message: str
) -> None:
    _, _, features = setup
    with pytest.raises(ParetorecError, match=re.escape(message)):
        build_model(architecture, features, funnel_tasks(), architecture_params=params, **common)


def test_esmm_needs_two_binary_tasks(setup: Any) -> None:
    _, _, features = setup
    tasks = (TaskSpec("engage"), TaskSpec("rating", "regression", mask_column="rated"))
    with pytest.raises(
        ParetorecError,
        match=re.escape(
            "esmm needs two binary tasks (click and conversion); got ['engage', 'rating']"
        ),
    ):
        build_model("esmm", features, tasks)


def test_features_selecting_nothing_are_refused(setup: Any) -> None:
    dataset, rows, _ = setup
    features = encode_features(FeatureSpec(user_id=False, item_id=False), dataset, rows)
    with pytest.raises(ParetorecError, match="features select nothing"):
        build_model("mmoe", features, funnel_tasks())
