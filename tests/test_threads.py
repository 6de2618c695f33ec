"""The one thread setting: where it comes from, and that it sets and restores every pool."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info
from typer.testing import CliRunner

from paretorec import ParetorecError
from paretorec import _threads as T
from paretorec.cli import app


@pytest.fixture(autouse=True)
def _fresh_setting(monkeypatch: pytest.MonkeyPatch):
    T.reset_configuration()
    monkeypatch.delenv(T.ENV_VAR, raising=False)
    before = torch.get_num_threads()
    yield
    T.reset_configuration()
    torch.set_num_threads(before)


def _blas_threads() -> dict[str, int]:
    return {info["filepath"]: info["num_threads"] for info in threadpool_info()}


def test_default_is_the_cores_this_process_may_use() -> None:
    assert T.configured_threads() == T.available_cores() >= 1


def test_environment_variable_then_configure_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(T.ENV_VAR, "3")
    assert T.configured_threads() == 3
    T.configure_threads(1)
    assert T.configured_threads() == 1
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "threads must be a positive integer, got 0"),
        (-2, "threads must be a positive integer, got -2"),
        (1.5, "threads must be a positive integer, got 1.5"),
        (True, "threads must be a positive integer, got True"),
        ("two", "threads must be a positive integer, got 'two'"),
    ],
)
def test_bad_counts_name_the_argument(value: object, message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        T.configure_threads(value)  # type: ignore[arg-type]
    with pytest.raises(ParetorecError, match=message), T.thread_limit(value):  # type: ignore[arg-type]
        pass


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(T.ENV_VAR, "many")
    with pytest.raises(ParetorecError, match="PARETOREC_THREADS must be a positive integer"):
        T.configured_threads()


def test_thread_limit_sets_and_restores_every_pool() -> None:
    np.ones((64, 64)) @ np.ones((64, 64))  # BLAS loaded, so threadpoolctl sees its pool
    torch.set_num_threads(2)
    outside = _blas_threads()
    assert outside, "no BLAS / OpenMP pool found"
    with T.thread_limit(1) as count:
        assert count == 1
        assert torch.get_num_threads() == 1
        assert set(_blas_threads().values()) == {1}
        assert T.configured_threads() == 1
    assert torch.get_num_threads() == 2
    assert _blas_threads() == outside


def test_a_nested_block_without_a_count_keeps_the_outer_count() -> None:
    T.configure_threads(2)
    with T.thread_limit(1), T.thread_limit() as inner:
        assert inner == 1
        assert torch.get_num_threads() == 1
    assert T.configured_threads() == 2


def test_models_fit_under_the_setting(tiny) -> None:
    from paretorec.models import create_model

    seen: list[int] = []
    model = create_model("ease", regularization=10.0)
    original = model._fit

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    model._fit = spy  # type: ignore[method-assign]
    torch.set_num_threads(2)
    with T.thread_limit(1):
        model.fit(tiny)
    assert seen == [1]
    assert torch.get_num_threads() == 2


def test_configure_sets_inter_op_first_thing_in_a_fresh_process() -> None:
    code = (
        "import json, torch\n"
        "from paretorec._threads import configure_threads, pool_threads\n"
        "configure_threads(1)\n"
        "print(json.dumps(pool_threads()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    pools = json.loads(out.stdout.strip().splitlines()[-1])
    assert pools["torch_intra_op"] == 1
    assert pools["torch_inter_op"] == 1
    assert all(v == 1 for k, v in pools.items() if not k.startswith("torch_"))


def test_cli_option_applies_the_setting() -> None:
    result = CliRunner().invoke(app, ["--threads", "1", "data", "list"])
    assert result.exit_code == 0, result.output
    assert T.configured_threads() == 1
    assert torch.get_num_threads() == 1
    bad = CliRunner().invoke(app, ["--threads", "0", "data", "list"])
    assert bad.exit_code == 2
    assert "threads must be a positive integer, got 0" in bad.output
