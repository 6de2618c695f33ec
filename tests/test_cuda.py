"""The CUDA path: rankers and the sequential model train on a GPU when one is present.

Skipped on machines without CUDA (CI); run on a GPU machine with
``python -m pytest tests/test_cuda.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from paretorec.data import stratified_split
from paretorec.models import CandidateModel, SequentialTransformer
from paretorec.multitask import MultiTaskRanker, funnel_rows, funnel_tasks

from .models.test_sequential import FAST as SEQ_FAST
from .models.test_sequential import topic_dataset
from .multitask.test_models import FAST, make_funnel_dataset

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

RANKER = {"embedding_dim": 8, "tower_units": (8,), "epochs": 30, "lr": 1e-2, "batch_size": 128}


@pytest.mark.parametrize(
    ("architecture", "strategy"),
    [("mmoe", "uncertainty"), ("ple", "gradnorm"), ("shared_bottom", "upgrad"), ("esmm", "fixed")],
)
def test_rankers_train_on_cuda_like_on_cpu(
    architecture: str, strategy: str, tmp_path: Path
) -> None:
    dataset = make_funnel_dataset(n_users=60, per_user=12)
    split = stratified_split(dataset, ratio=0.75, seed=0)
    train = funnel_rows(split.train, seed=0)
    test = funnel_rows(split.test, exclude=dataset, seed=1)
    tasks = funnel_tasks() if architecture != "esmm" else funnel_tasks()[:2]
    metrics = {}
    rankers = {}
    for device in ("cpu", "cuda"):
        ranker = MultiTaskRanker(
            architecture,
            tasks,
            strategy=strategy,
            architecture_params=FAST[architecture],
            device=device,
            seed=0,
            progress=False,
            **RANKER,  # type: ignore[arg-type]
        ).fit(train, dataset=dataset)
        assert next(ranker.model.parameters()).device.type == device
        metrics[device] = ranker.evaluate(test)
        rankers[device] = ranker
    # like and rating are functions of segment x genre (engage on this tiny set is noise)
    for device in ("cpu", "cuda"):
        assert metrics[device]["like_auc"] > 0.9
        if architecture != "esmm":
            assert metrics[device]["rating_rmse"] < 1.0
    # same seed, different kernels: close, not equal
    assert metrics["cuda"]["like_auc"] == pytest.approx(metrics["cpu"]["like_auc"], abs=0.05)
    # a model trained on the GPU loads and predicts on a CPU-only reader
    loaded = MultiTaskRanker.load(rankers["cuda"].save(tmp_path / "model"))
    expected = rankers["cuda"].predict(test)
    got = loaded.predict(test)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["id", "hybrid"])
def test_sequential_model_trains_on_cuda(mode: str, tmp_path: Path) -> None:
    dataset, vectors = topic_dataset()
    kwargs = {"item_vectors": vectors} if mode != "id" else {}
    model = SequentialTransformer(mode, seed=0, device="cuda", **SEQ_FAST).fit(dataset, **kwargs)
    users = np.arange(dataset.n_users)
    scores = model.score(users)
    assert scores.shape == (dataset.n_users, dataset.n_items) and np.isfinite(scores).all()
    loaded = CandidateModel.load(model.save(tmp_path / "seq"))
    np.testing.assert_allclose(loaded.score(users), scores, rtol=1e-4, atol=1e-4)
