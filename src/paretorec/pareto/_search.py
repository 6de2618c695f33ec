"""Policy search: an Optuna multi-objective study over a policy space, and its held-out check."""

from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend
from optuna.storages.journal._storage import JournalOperation
from tqdm.auto import tqdm

from .._validation import ParetorecError, check_choice, check_positive_int
from ..ranking import Policy
from ._front import ParetoFront
from ._objectives import PolicyEvaluator, objective_direction

SAMPLERS = ("nsga2", "random", "tpe")
RERANKERS = ("none", "mmr", "dpp", "fair")
BOOSTS = ("novelty", "long_tail", "popularity", "exposure")
_BOOST_PARAMS = {
    "novelty": "novelty_boost",
    "long_tail": "long_tail_boost",
    "popularity": "popularity_penalty",
    "exposure": "exposure_penalty",
}


#: The policy parameters each re-ranker reads.
_RERANKER_PARAMS: dict[str, tuple[str, ...]] = {
    "none": (),
    "mmr": ("mmr_lambda", "mmr_similarity"),
    "dpp": ("dpp_theta",),
    "fair": ("fair_min_share",),
}


@dataclass(frozen=True)
class SearchSpace:
    """Which policies the search may propose.

    ``rerankers``: re-rankers to choose from (with their parameter ranges);
    ``boosts``: which of the novelty boost, long-tail boost, popularity penalty and
    cross-user exposure penalty may be non-zero (each searched in ``[0, max_boost]``; the
    exposure penalty is not combined with DPP); ``sources``: extra score sources
    (ranker task predictions) whose fusion weights are searched in ``[0, 1]`` next to the
    candidate score's fixed weight of 1; ``max_depth``: when set, the re-rank depth
    (``Policy.depth``) is searched in ``[k, max_depth]`` on a log scale (``max_depth`` = the
    number of candidates; ``None``: re-rankers always see every candidate).
    """

    rerankers: tuple[str, ...] = RERANKERS
    boosts: tuple[str, ...] = BOOSTS
    sources: tuple[str, ...] = ()
    max_boost: float = 2.0
    k: int = 10
    max_depth: int | None = None

    def __post_init__(self) -> None:
        if not self.rerankers:
            raise ParetorecError("rerankers must list at least one re-ranker, got ()")
        for name in self.rerankers:
            check_choice(name, "rerankers", RERANKERS)
        for name in self.boosts:
            check_choice(name, "boosts", BOOSTS)
        if not self.max_boost > 0:
            raise ParetorecError(f"max_boost must be positive, got {self.max_boost}")
        if self.max_depth is not None and self.max_depth < self.k:
            raise ParetorecError(
                f"max_depth must be at least k ({self.k}) or None, got {self.max_depth}"
            )

    def initial_design(self) -> list[dict[str, Any]]:
        """Optuna parameter sets that seed the first generation.

        A small design over each allowed re-ranker's parameter (and each boost alone), so
        the search starts from every region of the space instead of relying on mutation
        to rediscover a categorical choice once the population has converged. Seeds count
        towards the trial budget and are derived from the space alone, so compared spaces
        are treated alike.
        """
        design: list[dict[str, Any]] = []
        for reranker in self.rerankers:
            base: dict[str, Any] = {"reranker": reranker} if len(self.rerankers) > 1 else {}
            if reranker == "mmr":
                for similarity in ("max", "mean"):
                    for lam in (0.3, 0.5, 0.7, 0.9):
                        design.append({**base, "mmr_lambda": lam, "mmr_similarity": similarity})
            elif reranker == "dpp":
                design += [{**base, "dpp_theta": theta} for theta in (0.5, 0.7, 0.85, 0.95)]
            elif reranker == "fair":
                design += [{**base, "fair_min_share": share} for share in (0.1, 0.3, 0.5)]
            # "none" without boosts is the baseline, already trial 0
        if "none" in self.rerankers:
            base = {"reranker": "none"} if len(self.rerankers) > 1 else {}
            for boost in self.boosts:
                for level in (0.25, 0.5, 1.0):
                    design.append({**base, _BOOST_PARAMS[boost]: level * self.max_boost})
        # combinations: diversity from MMR, exposure spread from the penalties
        penalties = [b for b in ("popularity", "exposure") if b in self.boosts]
        if "mmr" in self.rerankers and penalties:
            base = {"reranker": "mmr"} if len(self.rerankers) > 1 else {}
            for lam in (0.5, 0.7):
                for level in (0.25, 0.5):
                    design.append(
                        {
                            **base,
                            "mmr_lambda": lam,
                            "mmr_similarity": "mean",
                            **{_BOOST_PARAMS[b]: level * self.max_boost for b in penalties},
                        }
                    )
        out = []
        for params in design:
            filled = {
                _BOOST_PARAMS[b]: params.get(_BOOST_PARAMS[b], 0.0)
                for b in self.boosts
                if not (b == "exposure" and params.get("reranker") == "dpp")
                and not (b == "exposure" and self.rerankers == ("dpp",))
            }
            out.append({**params, **filled})
        return out

    def suggest(self, trial: Any) -> Policy:
        """Sample a policy from an Optuna trial.

        Every parameter of the space is suggested in every trial, also those the chosen
        re-ranker ignores (e.g. ``dpp_theta`` when MMR is chosen): Optuna's NSGA-II applies
        crossover and mutation only to the parameters all trials share and samples the rest
        at random, so a conditional space would reduce it to random search. Ignored
        parameters do not enter the policy.
        """
        params: dict[str, Any] = {"k": self.k}
        reranker = (
            trial.suggest_categorical("reranker", list(self.rerankers))
            if len(self.rerankers) > 1
            else self.rerankers[0]
        )
        params["reranker"] = reranker
        suggested: dict[str, Any] = {}
        if "mmr" in self.rerankers:
            suggested["mmr_lambda"] = trial.suggest_float("mmr_lambda", 0.0, 1.0)
            suggested["mmr_similarity"] = trial.suggest_categorical(
                "mmr_similarity", ["max", "mean"]
            )
        if "dpp" in self.rerankers:
            suggested["dpp_theta"] = trial.suggest_float("dpp_theta", 0.0, 0.99)
        if "fair" in self.rerankers:
            suggested["fair_min_share"] = trial.suggest_float("fair_min_share", 0.0, 1.0)
        used = _RERANKER_PARAMS[reranker]
        params.update({name: value for name, value in suggested.items() if name in used})
        for boost in self.boosts:
            value = trial.suggest_float(_BOOST_PARAMS[boost], 0.0, self.max_boost)
            if not (boost == "exposure" and reranker == "dpp"):  # not combined with DPP
                params[_BOOST_PARAMS[boost]] = value
        # order and depth matter where a re-ranker or the exposure penalty chooses the set
        chooses = reranker != "none" or params.get("exposure_penalty", 0.0) > 0
        if self.rerankers != ("fair",) and (
            self.rerankers != ("none",) or "exposure" in self.boosts
        ):
            order = trial.suggest_categorical("order", ["reranker", "score"])
            if chooses and reranker != "fair":
                params["order"] = order
        if self.max_depth is not None and self.max_depth > self.k:
            depth = trial.suggest_int("depth", self.k, self.max_depth, log=True)
            if chooses:  # only a re-ranker or the exposure penalty reads the depth
                params["depth"] = depth
        if self.sources:
            weights = {"candidate": 1.0}
            for source in self.sources:
                weights[source] = trial.suggest_float(f"weight_{source}", 0.0, 1.0)
            params["weights"] = weights
        return Policy(**params)


@dataclass(frozen=True)
class Constraint:
    """A bound on one objective: ``min`` for maximised ones, ``max`` for minimised ones.

    With ``relative=True`` the bound multiplies the baseline policy's value (the default
    policy, evaluated first), e.g. ``Constraint("ndcg", min=0.95, relative=True)``.
    """

    objective: str
    min: float | None = None
    max: float | None = None
    relative: bool = False

    def __post_init__(self) -> None:
        objective_direction(self.objective)
        if (self.min is None) == (self.max is None):
            raise ParetorecError(
                f"constraint on {self.objective!r} needs exactly one of min or max, "
                f"got min={self.min}, max={self.max}"
            )

    def violation(self, values: dict[str, float], baseline: dict[str, float]) -> float:
        """<= 0 when satisfied (Optuna's convention)."""
        scale = baseline[self.objective] if self.relative else 1.0
        value = values[self.objective]
        if self.min is not None:
            return self.min * scale - value
        assert self.max is not None
        return value - self.max * scale


@dataclass
class SearchResult:
    """Every evaluated policy with its objective values, and the feasible front."""

    objectives: tuple[str, ...]
    directions: list[str]
    policies: list[Policy]
    values: np.ndarray
    feasible: np.ndarray
    seconds: float
    baseline: dict[str, float] = field(default_factory=dict)

    @property
    def front(self) -> ParetoFront:
        """Non-dominated feasible policies, each distinct policy once (first trial kept)."""
        seen: set[Policy] = set()
        rows_list = []
        for row in np.flatnonzero(self.feasible):
            if self.policies[row] not in seen:
                seen.add(self.policies[row])
                rows_list.append(row)
        rows = np.asarray(rows_list, dtype=np.int64)
        full = ParetoFront(
            values=self.values[rows],
            directions=self.directions,
            names=list(self.objectives),
            payloads=[self.policies[i].to_dict() for i in rows],
        )
        return full.front()

    def front_policies(self) -> list[Policy]:
        return [Policy.from_dict(p) for p in self.front.payloads or []]


def _make_sampler(name: str, seed: int, population_size: int) -> Any:
    """Constraints reach the samplers through ``Trial.set_constraint`` (Optuna >= 5)."""
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population_size)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def run_search(
    evaluator: PolicyEvaluator,
    space: SearchSpace,
    *,
    n_trials: int = 500,
    sampler: str = "nsga2",
    storage: str | Path | None = None,
    study_name: str = "paretorec",
    seed: int = 0,
    population_size: int = 50,
    constraints: Sequence[Constraint] = (),
    progress: bool = True,
    workers: int = 1,
    study_attrs: dict[str, Any] | None = None,
) -> SearchResult:
    """Search ``space`` for Pareto-optimal policies under ``evaluator``'s objectives.

    ``storage`` (see :func:`open_storage`): ``None`` keeps the study in memory; a file path
    is an Optuna journal file (``.db`` / ``.sqlite`` paths are SQLite files); a URL
    (``sqlite:///study.db``, ``postgresql://...``) is an Optuna RDB storage. A study found
    in the storage is resumed: only the missing trials are run. The default policy (the
    candidate model's own ranking) is always evaluation 0 of the result, so the accuracy
    anchor is on record; it is evaluated beside the study, which holds the other
    ``n_trials - 1`` evaluations.

    The budget is agreed through the storage: the study holds exactly ``n_trials - 1``
    trial *tickets* (waiting trials, created here before any evaluation); every worker
    claims a ticket before evaluating (Optuna's waiting-trial pop, which exactly one
    claimant wins) and stops when none is left. So ``workers`` processes (this one and
    ``workers - 1`` spawned ones, worker ``i`` sampling with NSGA-II seed ``seed + i``)
    finish exactly the budget with distinct trial numbers. More workers can join from
    other machines (``paretorec pareto-worker``). ``study_attrs`` are stored on a new
    study (what a joining worker needs to rebuild the evaluator).
    """
    import optuna

    n_trials = check_positive_int(n_trials, "n_trials")
    workers = check_positive_int(workers, "workers")
    check_choice(sampler, "sampler", SAMPLERS)
    if space.k != evaluator.k:
        raise ParetorecError(f"space k ({space.k}) must equal the evaluator's k ({evaluator.k})")
    if workers > 1 and storage is None:
        raise ParetorecError(
            f"workers={workers} needs a storage the workers share (a journal file path or "
            "an RDB URL), got storage=None"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = open_storage(storage)
    study = optuna.create_study(
        study_name=study_name,
        storage=opened,
        directions=list(evaluator.directions),  # type: ignore[arg-type]
        load_if_exists=True,
    )
    if not study.trials:
        from ._distributed import FINGERPRINT_ATTR, evaluator_fingerprint

        attrs = {**(study_attrs or {}), FINGERPRINT_ATTR: evaluator_fingerprint(evaluator)}
        for key, value in attrs.items():
            study.set_user_attr(key, value)
    _issue_tickets(study, space, n_trials - 1)
    baseline_policy = Policy(k=evaluator.k)
    baseline = evaluator.evaluate(baseline_policy)

    settings = WorkerSettings(
        sampler=sampler,
        seed=seed,
        population_size=population_size,
        constraints=tuple(constraints),
    )
    started = time.perf_counter()
    processes = []
    if workers > 1:
        import multiprocessing

        # spawn, not fork: the parent may hold OpenMP / BLAS thread pools
        context = multiprocessing.get_context("spawn")
        ready = context.Barrier(workers)  # start together once every worker has loaded
        for index in range(1, workers):
            process = context.Process(
                target=_worker_process,
                args=(str(storage), study_name, evaluator, space, settings, index, ready),
                name=f"paretorec-search-{index}",
            )
            process.start()
            processes.append(process)
        _wait(ready)
    try:
        run_worker(study, evaluator, space, settings, worker=0, progress=progress)
    finally:
        for process in processes:
            process.join()
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise ParetorecError(f"search workers {failed} failed (see their output above)")
    seconds = time.perf_counter() - started
    sync_storage(opened)
    return _collect(study, evaluator, baseline_policy, baseline, constraints, seconds)


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker samples: the study's sampler, its base seed, NSGA-II's population."""

    sampler: str = "nsga2"
    seed: int = 0
    population_size: int = 50
    constraints: tuple[Constraint, ...] = ()


def _issue_tickets(study: Any, space: SearchSpace, budget: int) -> None:
    """Top the study up to ``budget`` live trials (waiting, running or finished, not failed).

    Called by the coordinating process only, before its workers start: trials left running
    by a killed run are failed and replaced by fresh tickets (resume), so the budget
    completes. The seeding design fills the first tickets of a new study.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if trial.state == TrialState.RUNNING:  # left over from a killed run
            study.tell(trial.number, state=TrialState.FAIL)
    live = [t for t in trials if t.state not in (TrialState.FAIL, TrialState.RUNNING)]
    missing = budget - len(live)
    if missing <= 0:
        return
    design = space.initial_design()[:missing] if not trials else []
    for params in design:
        study.enqueue_trial(params)
    for _ in range(missing - len(design)):
        study.enqueue_trial({})


def _claim_ticket(study: Any, storage: Any, study_id: int) -> Any:
    """Pop one waiting trial (the storage lets exactly one claimant win it), or ``None``."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                return optuna.trial.Trial(study, trial._trial_id)
        except UpdateFinishedTrialError:
            continue
    return None


def run_worker(
    study: Any,
    evaluator: PolicyEvaluator,
    space: SearchSpace,
    settings: WorkerSettings,
    *,
    worker: int = 0,
    progress: bool = False,
) -> int:
    """Claim and evaluate tickets of ``study`` until none is left; the count evaluated.

    Worker ``i`` samples with seed ``settings.seed + i``: NSGA-II reseeded per worker, so
    workers do not propose the same children.
    """
    from optuna.trial import TrialState

    study.sampler = _make_sampler(
        settings.sampler, settings.seed + worker, settings.population_size
    )
    storage = study._storage
    study_id = storage.get_study_id_from_name(study.study_name)
    baseline = evaluator.evaluate(Policy(k=evaluator.k))
    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    bar = tqdm(
        total=waiting,
        desc=f"search ({settings.sampler}, worker {worker})",
        disable=not progress,
        leave=False,
    )
    done = 0
    while (trial := _claim_ticket(study, storage, study_id)) is not None:
        policy = space.suggest(trial)
        values = evaluator.evaluate(policy)
        trial.set_user_attr("policy", policy.to_dict())
        trial.set_user_attr("worker", worker)
        found = {
            f"{i}:{c.objective}": c.violation(values, baseline)
            for i, c in enumerate(settings.constraints)
        }
        if found:
            trial.set_user_attr("constraint", list(found.values()))
            for name, violation in found.items():
                trial.set_constraint(name, violation)
        study.tell(trial, [values[name] for name in evaluator.objectives])
        done += 1
        bar.update(1)
    bar.close()
    return done


def _worker_process(
    storage: str,
    study_name: str,
    evaluator: PolicyEvaluator,
    space: SearchSpace,
    settings: WorkerSettings,
    index: int,
    ready: Any,
) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = open_storage(storage)
    study = optuna.load_study(study_name=study_name, storage=opened)
    _wait(ready)
    run_worker(study, evaluator, space, settings, worker=index)
    sync_storage(opened)


def _wait(barrier: Any, timeout: float = 300.0) -> None:
    """Wait for the other workers; a worker that never arrives (it failed to start) does
    not stall the rest: they go on without it after ``timeout`` seconds."""
    import contextlib
    import threading

    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout)


def _collect(
    study: Any,
    evaluator: PolicyEvaluator,
    baseline_policy: Policy,
    baseline: dict[str, float],
    constraints: Sequence[Constraint],
    seconds: float,
) -> SearchResult:
    from optuna.trial import TrialState

    finished = sorted(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number
    )
    policies = [baseline_policy] + [Policy.from_dict(t.user_attrs["policy"]) for t in finished]
    values = np.array(
        [[baseline[name] for name in evaluator.objectives]] + [t.values for t in finished],
        dtype=np.float64,
    )
    feasible = np.array(
        [all(c.violation(baseline, baseline) <= 0 for c in constraints)]
        + [all(v <= 0 for v in t.user_attrs.get("constraint", [0.0])) for t in finished]
    )
    return SearchResult(
        objectives=tuple(evaluator.objectives),
        directions=evaluator.directions,
        policies=policies,
        values=values.reshape(len(policies), len(evaluator.objectives)),
        feasible=feasible,
        seconds=seconds,
        baseline=baseline,
    )


#: Suffixes of a storage path read as a SQLite file (any other path is a journal file).
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def open_storage(storage: str | Path | None) -> Any:
    """The Optuna storage named by ``storage``.

    ``None``: in memory (not resumable). A URL with ``://`` (``sqlite:///study.db``,
    ``postgresql://user@host/db``): Optuna's RDB storage, the choice for workers on several
    machines. A path ending in ``.db``, ``.sqlite`` or ``.sqlite3``: a SQLite file. Any
    other path: an Optuna journal file (:class:`JournalFile`, the default), an append-only
    log that workers on one machine (or on a shared file system) share through a lock file.
    """
    if storage is None:
        return None
    import optuna

    text = str(storage)
    if "://" in text:
        return optuna.storages.RDBStorage(text)
    path = Path(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in SQLITE_SUFFIXES:
        return optuna.storages.RDBStorage(f"sqlite:///{path.resolve()}")
    return BatchedJournalStorage(JournalFile(path))


def sync_storage(storage: Any) -> None:
    """Write a journal storage's held-back logs and force its file's last appends to disk
    (no-op for other storages)."""
    if isinstance(storage, BatchedJournalStorage):
        storage.flush()
    backend = getattr(storage, "_backend", None)
    if isinstance(backend, JournalFile):
        backend.sync()


#: What identifies a held-back log read back from the file (with its order).
_ECHO_KEYS = ("op_code", "worker_id", "trial_id")


class BatchedJournalStorage(JournalStorage):
    """Optuna's :class:`~optuna.storages.JournalStorage`, writing a trial's own details
    with its next state change instead of one append each.

    Optuna appends one log line, under the file lock, for every parameter suggested and
    every attribute set: about 20 appends per trial of a policy search (12 parameters, the
    policy, worker and constraint attributes, the sampler's generation), each taking and
    releasing the lock file. Here the logs that only touch a trial this worker is running
    (``set_trial_param``, ``set_trial_user_attr``, ``set_trial_system_attr``) take effect
    in this process's replica at once and are held back; the next other log (the trial's
    completion, the next claim, a study attribute, ...) is appended together with them, in
    their original order, in one locked write. The file holds the same logs in the same
    order per trial, so any Optuna reader (other workers, ``optuna`` tools, a resumed run)
    replays the same study. Read back from the file, this process's held-back logs are
    counted but not applied a second time.

    What other processes see: a running trial's parameters and attributes appear when it
    finishes (Optuna's samplers read finished trials only). A worker killed mid-trial
    loses that trial's held-back details; the trial stays ``RUNNING`` in the file, which a
    resumed search fails and replaces, as before.
    """

    _HELD_BACK = frozenset(
        {
            JournalOperation.SET_TRIAL_PARAM,
            JournalOperation.SET_TRIAL_USER_ATTR,
            JournalOperation.SET_TRIAL_SYSTEM_ATTR,
        }
    )

    def __init__(self, backend: BaseJournalBackend) -> None:
        self._held: list[dict[str, Any]] = []
        #: held-back logs written to the file and not yet read back (already applied)
        self._echo: deque[dict[str, Any]] = deque()
        super().__init__(backend)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["_held"] = []  # held-back logs belong to this process's running trials
        state["_echo"] = deque()
        return state

    def _sync_with_backend(self) -> None:
        """Apply the logs appended since the last read, except this process's held-back
        logs coming back from the file: those took effect when they were held back (they
        are still counted as read)."""
        replay = self._replay_result
        echo = self._echo
        for log in self._backend.read_logs(replay.log_number_read):
            head = echo[0] if echo else None
            if head is not None and all(log.get(key) == head[key] for key in _ECHO_KEYS):
                echo.popleft()  # this process's held-back logs come back in their order
                if log == head:  # applied when held back (a value JSON changed: re-applied)
                    replay.log_number_read += 1
                    continue
            replay.apply_logs([log])

    def _write_log(self, op_code: int, extra_fields: dict[str, Any]) -> None:
        # called by JournalStorage with its thread lock held, followed by a sync
        replay = self._replay_result
        log = {"op_code": op_code, "worker_id": replay.worker_id, **extra_fields}
        if op_code in self._HELD_BACK and extra_fields.get("trial_id") == replay.owned_trial_id:
            # apply to this process's replica now (raising like a written log would); the
            # replica re-applies it, unchanged, when it reads it back from the file
            replay.apply_logs([log])
            replay.log_number_read -= 1  # not read from the file yet
            self._held.append(log)
            return
        logs = [*self._held, log]
        self._echo.extend(self._held)
        self._held = []
        self._backend.append_logs(logs)

    def flush(self) -> None:
        """Append the held-back logs now (a search or worker that ends calls this)."""
        with self._thread_lock:
            if self._held:
                logs, self._held = self._held, []
                self._echo.extend(logs)
                self._backend.append_logs(logs)
                self._sync_with_backend()


class JournalFile(BaseJournalBackend):
    """Optuna's journal file log, with the ``fsync`` batched.

    Reads are Optuna's :class:`~optuna.storages.journal.JournalFileBackend`; appends take
    the same lock (:class:`~optuna.storages.journal.JournalFileOpenLock`: an ``O_EXCL``
    lock file, safe on local disks and NFSv3+), write and flush each log line, like
    Optuna's, but ``fsync`` at most every ``fsync_seconds`` (and on :meth:`sync`, called
    when a search or worker ends) instead of after every line: a search writes about 15
    lines per trial, and an ``fsync`` costs milliseconds, more than evaluating a policy.

    Durability: every line is in the operating system's page cache when the call returns,
    so a killed worker loses nothing and the others see its writes at once; a machine
    crash (power loss) can lose the last ``fsync_seconds`` of trials, which a resumed
    search runs again.
    """

    def __init__(self, path: str | Path, fsync_seconds: float = 1.0) -> None:
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        self.path = str(path)
        self.fsync_seconds = fsync_seconds
        self._lock = JournalFileOpenLock(self.path)
        self._reader = JournalFileBackend(self.path, lock_obj=self._lock)
        self._last_fsync = time.monotonic()
        self._dirty = False
        self._handle: BinaryIO | None = None
        self._offset = 0
        self._next_log = 0

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None}

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """New logs from ``log_number_from`` on. The storage reads sequentially (after each
        of its own writes, about 15 per trial), so the common case reads on from a kept
        file handle and offset instead of reopening the file; any other start is
        Optuna's reader."""
        if log_number_from != self._next_log:
            yield from self._reader.read_logs(log_number_from)
            return
        if self._handle is None:
            self._handle = open(self.path, "rb")  # noqa: SIM115 - kept open across calls
        self._handle.seek(self._offset)
        for line in self._handle:
            if not line.endswith(b"\n"):  # a line another process is still writing
                break
            self._offset += len(line)
            self._next_log += 1
            yield json.loads(line)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        self._lock.acquire()
        try:
            with open(self.path, "ab") as handle:
                handle.write(text.encode("utf-8"))
                handle.flush()
                if time.monotonic() - self._last_fsync >= self.fsync_seconds:
                    os.fsync(handle.fileno())
                    self._last_fsync = time.monotonic()
                    self._dirty = False
                else:
                    self._dirty = True
        finally:
            self._lock.release()

    def sync(self) -> None:
        if self._dirty:
            with open(self.path, "ab") as handle:
                os.fsync(handle.fileno())
            self._last_fsync = time.monotonic()
            self._dirty = False


@dataclass
class HoldoutCheck:
    """The validation front re-evaluated on test."""

    objectives: tuple[str, ...]
    validation: np.ndarray
    test: np.ndarray
    spearman_ndcg: float
    #: per front row: standard error over validation users of its validation nDCG as a
    #: share of the plain ranking's (``ndcg_share_standard_errors``); None when not measured
    validation_ndcg_share_se: np.ndarray | None = None


def holdout_check(
    policies: Sequence[Policy], validation: np.ndarray, test_evaluator: PolicyEvaluator
) -> HoldoutCheck:
    """Evaluate each front policy on test; Spearman of validation vs test nDCG across them."""
    from scipy.stats import spearmanr

    objectives = tuple(test_evaluator.objectives)
    test = np.array(
        [[test_evaluator.evaluate(p)[name] for name in objectives] for p in policies]
    ).reshape(len(policies), len(objectives))
    rho = math.nan
    if "ndcg" in objectives and len(policies) >= 3:
        column = objectives.index("ndcg")
        if np.ptp(validation[:, column]) > 0 and np.ptp(test[:, column]) > 0:
            rho = float(spearmanr(validation[:, column], test[:, column]).statistic)
    return HoldoutCheck(objectives=objectives, validation=validation, test=test, spearman_ndcg=rho)
