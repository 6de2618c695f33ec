"""DDP training: 2 gloo processes on localhost reach the parameters of one process."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from paretorec import ParetorecError
from paretorec.multitask import MultiTaskRanker, Strategy, build_model, funnel_rows, funnel_tasks
from paretorec.multitask._distributed import DistributedContext, check_supported
from paretorec.multitask._strategies import get_strategy

from .test_models import make_funnel_dataset, make_setup

#: a weighted sum with a learned weight, one reading the losses' values, one Jacobian aggregator
STRATEGIES = ("uncertainty", "gradnorm", "upgrad")
RANKER: dict[str, Any] = {
    "embedding_dim": 8,
    "tower_units": (8,),
    "epochs": 2,
    "batch_size": 150,  # 600 rows: 4 global batches of 75 rows per rank
    "lr": 5e-3,
    "dropout": 0.0,
    "device": "cpu",
    "progress": False,
}


def _rows() -> tuple[Any, Any, Any]:
    dataset = make_funnel_dataset()
    rows = funnel_rows(dataset, seed=0).sample(frac=1.0, random_state=0).reset_index(drop=True)
    return dataset, rows.iloc[:600].reset_index(drop=True), rows.iloc[600:].reset_index(drop=True)


def _fit_all(architecture: str) -> dict[str, dict[str, np.ndarray]]:
    dataset, train, valid = _rows()
    out = {}
    for strategy in STRATEGIES:
        ranker = MultiTaskRanker(architecture, strategy=strategy, seed=3, **RANKER)
        ranker.fit(train, valid, dataset=dataset)
        out[strategy] = {
            k: v.detach().numpy().copy() for k, v in ranker.model_.state_dict().items()
        }
    return out


#: the sequential model, small and without dropout (DDP draws other masks than one process)
SEQUENTIAL: dict[str, Any] = {
    "hidden": 16,
    "n_layers": 1,
    "epochs": 3,
    "batch_size": 16,
    "learning_rate": 0.02,
    "dropout": 0.0,
    "id_dropout": 0.2,  # drawn from the shared generator: every rank draws the same
    "seed": 1,
}


def _fit_sequential() -> dict[str, np.ndarray]:
    from paretorec.models import SequentialTransformer

    from ..conftest import make_tiny

    model = SequentialTransformer("id", **SEQUENTIAL).fit(make_tiny())
    return {k: v.detach().numpy().copy() for k, v in model._network.state_dict().items()}


def _rank(rank: int, world: int, store: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        for strategy, state in _fit_all("mmoe").items():
            np.savez(f"{out}/rank{rank}_{strategy}.npz", **state)
        np.savez(f"{out}/rank{rank}_sequential.npz", **_fit_sequential())
    finally:
        dist.destroy_process_group()


@pytest.mark.filterwarnings("ignore::paretorec.models.ConvergenceWarning")  # short on purpose
def test_two_processes_reach_the_single_process_parameters(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    store = tmp_path / "store"
    processes = [
        context.Process(target=_rank, args=(rank, 2, str(store), str(tmp_path))) for rank in (0, 1)
    ]
    for process in processes:
        process.start()
    single = _fit_all("mmoe")  # meanwhile, the single-process reference
    single["sequential"] = _fit_sequential()
    for process in processes:
        process.join(timeout=300)
    assert [p.exitcode for p in processes] == [0, 0]
    initial = _initial_state()
    for strategy in (*STRATEGIES, "sequential"):
        ranks = [np.load(tmp_path / f"rank{r}_{strategy}.npz") for r in (0, 1)]
        for name, reference in single[strategy].items():
            if strategy == "sequential" and name.endswith("qkv.bias"):
                # the key third of this bias has a zero gradient in exact arithmetic (a
                # constant added to every key's score); Adam turns its rounding noise into
                # full steps, in one process as in two, so compare the query and value parts
                third = reference.shape[0] // 3
                keep = np.r_[0:third, 2 * third : 3 * third]
                reference = reference[keep]
                ranks_part = [state[name][keep] for state in ranks]
            else:
                ranks_part = [state[name] for state in ranks]
            for value in ranks_part:
                np.testing.assert_allclose(
                    value, reference, rtol=0, atol=1e-5, err_msg=f"{strategy}: {name}"
                )
        if strategy == "sequential":
            continue
        moved = max(
            float(np.abs(single[strategy][k] - v).max())
            for k, v in initial.items()
            if v.dtype.kind == "f"
        )
        assert moved > 1e-3, strategy  # training changed the parameters: not a vacuous check


def _initial_state() -> dict[str, np.ndarray]:
    dataset, train, valid = _rows()
    ranker = MultiTaskRanker("mmoe", seed=3, **{**RANKER, "epochs": 1, "lr": 1e-12})
    ranker.fit(train, valid, dataset=dataset)
    return {k: v.detach().numpy() for k, v in ranker.model_.state_dict().items()}


class _CustomStrategy(Strategy):
    name = "custom"

    def backward(self, losses, *, shared_parameters, extra_loss=None):  # type: ignore[no-untyped-def]
        losses.sum().backward()
        return {}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("strategy", r"strategy _CustomStrategy cannot run under DDP \(world size 2\)"),
        ("regularizer", r"regularizer cannot run under DDP: it would see one rank's rows"),
        ("batch_norm", r"batch_norm=True cannot run under DDP"),
    ],
)
def test_what_cannot_run_under_ddp_is_refused(case: str, message: str) -> None:
    _, _, features = make_setup()
    model = build_model("mmoe", features, funnel_tasks(), batch_norm=case == "batch_norm")
    strategy = _CustomStrategy(3) if case == "strategy" else get_strategy("fixed", 3)
    regularizer = (lambda batch, outputs: None) if case == "regularizer" else None
    with pytest.raises(ParetorecError, match=message):
        check_supported(model, strategy, regularizer, DistributedContext(rank=0, world_size=2))
    check_supported(model, strategy, regularizer, None)  # one process: anything goes


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"loss": "sampled"}, r"loss='sampled' cannot run under DDP \(world size 2\)"),
        ({"text_adapter": "lora"}, r"text_adapter='lora' cannot run under DDP"),
    ],
)
def test_sequential_settings_ddp_cannot_reproduce_are_refused(
    monkeypatch: pytest.MonkeyPatch, params: dict[str, Any], message: str
) -> None:
    from paretorec.models import _sequential

    monkeypatch.setattr(_sequential, "current", lambda: DistributedContext(rank=0, world_size=2))
    model = _sequential.SequentialTransformer("hybrid", **{**SEQUENTIAL, **params})
    with pytest.raises(ParetorecError, match=message):
        _sequential._ddp_context(model)
