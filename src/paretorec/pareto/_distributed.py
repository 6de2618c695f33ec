"""Distributed policy search: workers joining a stored study from this or other machines.

``paretorec pareto CONFIG --workers N`` runs N processes on one study (see
:func:`~paretorec.pareto.run_search`: the budget is a fixed set of waiting trials that
workers claim one at a time). ``paretorec pareto-worker STORAGE`` joins such a study from
another machine: the study carries its Pareto config, the worker rebuilds the validation
evaluator from it (the same data, split and candidate model, deterministic) and checks a
fingerprint of the candidates and held-out items against the coordinator's before it
evaluates anything, so a worker with other data or another code version cannot pollute
the front.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from .._validation import ParetorecError
from ._objectives import PolicyEvaluator

#: Study user attributes a joining worker reads.
CONFIG_ATTR = "paretorec_config"
SPACE_ATTR = "paretorec_space"
FINGERPRINT_ATTR = "paretorec_evaluator"


def evaluator_fingerprint(evaluator: PolicyEvaluator) -> str:
    """sha256 of what must agree between workers: candidate users and items, held-out items,
    objectives and list length (scores are floats and may differ in the last bit across
    machines, so they are left out)."""
    digest = hashlib.sha256()
    for array in (
        evaluator.candidates.users,
        evaluator.candidates.items,
        evaluator.relevant.indptr,
        evaluator.relevant.indices,
    ):
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    digest.update(repr((tuple(evaluator.objectives), evaluator.k)).encode())
    return digest.hexdigest()


def worker_attrs(config: Any, space: str) -> dict[str, Any]:
    """What a study records so that ``pareto-worker`` can rebuild its evaluator."""
    return {CONFIG_ATTR: config.model_dump(mode="json"), SPACE_ATTR: space}


def join_search(
    storage: str | Path,
    *,
    study_name: str | None = None,
    data_dir: str | Path | None = None,
    worker: int | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Join every paretorec study in ``storage`` that still has unclaimed trials (or only
    ``study_name``); returns the trials this worker evaluated per study.

    ``worker`` offsets the NSGA-II seed (default: derived from the host name and process
    id, so workers on several machines sample differently).
    """
    import optuna
    from optuna.trial import TrialState

    from ..config import ParetoConfig
    from ._pipeline import _space, validation_evaluator
    from ._search import WorkerSettings, open_storage, run_worker, sync_storage

    console = console or Console()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if "://" not in str(storage) and not Path(storage).is_file():
        raise ParetorecError(f"storage must be an existing study file or an RDB URL, got {storage}")
    opened = open_storage(storage)
    names = optuna.study.get_all_study_names(storage=opened)
    if study_name is not None and study_name not in names:
        raise ParetorecError(f"study_name must be one of {names}, got {study_name!r}")
    if worker is None:
        worker = int(
            hashlib.sha256(f"{socket.gethostname()}:{os.getpid()}".encode()).hexdigest()[:6], 16
        )
    done: dict[str, int] = {}
    evaluators: dict[str, PolicyEvaluator] = {}
    for name in [study_name] if study_name else names:
        study = optuna.load_study(study_name=name, storage=opened)
        attrs = study.user_attrs
        if CONFIG_ATTR not in attrs:
            if study_name:
                raise ParetorecError(f"study {name!r} was not created by paretorec pareto")
            continue
        if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            done[name] = 0
            continue
        raw = dict(attrs[CONFIG_ATTR])
        if data_dir is not None:
            raw["data"] = {**raw["data"], "data_dir": str(data_dir)}
        config = ParetoConfig.from_dict(raw, source=f"study {name!r}")
        key = repr(raw["data"]) + repr(raw["candidates"]) + repr(raw.get("ranker"))
        if key not in evaluators:
            console.print(f"rebuilding the validation evaluator of {name!r} ...")
            evaluators[key] = validation_evaluator(config, console=console)
        evaluator = evaluators[key]
        expected = attrs.get(FINGERPRINT_ATTR)
        if expected != evaluator_fingerprint(evaluator):
            raise ParetorecError(
                f"study {name!r}: this worker's candidates or held-out items differ from the "
                "coordinator's (other data, split or code version); refusing to join"
            )
        space_name = attrs.get(SPACE_ATTR, "full")
        space_config = (
            config.search.space if space_name == "full" else config.search.compare[space_name]
        )
        sources = config.ranker.source_names() if config.ranker is not None else ()
        space = _space(space_config, config.objectives.k, config.candidates.n_candidates, sources)
        from ._search import Constraint

        settings = WorkerSettings(
            sampler=config.search.sampler,
            seed=config.search.seed,
            population_size=config.search.population_size,
            constraints=tuple(Constraint(**c.model_dump()) for c in config.search.constraints),
        )
        done[name] = run_worker(study, evaluator, space, settings, worker=worker, progress=progress)
        sync_storage(opened)
        console.print(f"  {name}: {done[name]} trials evaluated by this worker")
    return done
