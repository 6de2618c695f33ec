"""The ``paretorec`` command line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand

from ._validation import ParetorecError

app = typer.Typer(
    name="paretorec",
    help=(
        "Multi-objective recommendation with pretrained language models.\n\n"
        "Data sets are read from --data-dir, then $PARETOREC_DATA_DIR, then the user cache; "
        "--download fetches the official release (sha256-checked)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and download data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(width=max(140, Console().width))  # tables stay readable when piped
err_console = Console(stderr=True, soft_wrap=True)  # one error, one line: paths stay whole

F = TypeVar("F", bound=Callable[..., Any])


def _show_version(value: bool) -> None:
    if value:
        from . import __version__

        console.print(f"paretorec {__version__}")
        raise typer.Exit()


DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder holding the data set (or its parent folder)."),
]
Download = Annotated[
    bool, typer.Option("--download", help="Download the official release if not found.")
]


def _friendly_errors(fn: F) -> F:
    """Show user errors as one clear line and exit with status 2, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ParetorecError as exc:
            # escaped: messages quote user values such as 'gap[gender]' (not rich markup)
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            help="CPU threads for torch (intra- and inter-op) and the BLAS / OpenMP pools; "
            "default $PARETOREC_THREADS, else the number of cores.",
        ),
    ] = None,
) -> None:
    """Multi-objective recommendation with pretrained language models."""
    from ._threads import configure_threads

    try:
        configure_threads(threads)
    except ParetorecError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None


@data_app.command("list")
def data_list() -> None:
    """List the registered data sets."""
    from .data import list_datasets

    for name in list_datasets():
        console.print(name)


@data_app.command("info")
@_friendly_errors
def data_info(
    name: Annotated[
        str,
        typer.Argument(
            help="A registered data set (movielens-100k), an events file (CSV, TSV, Parquet, "
            "JSON Lines; compressed too; columns guessed), or a TOML config (its [data])."
        ),
    ],
    data_dir: DataDir = None,
    download: Download = False,
) -> None:
    """Load a data set and print what was understood: counts, columns, labels, time, gaps."""
    from .data import describe_dataset

    settings = _data_config(name, data_dir, download)
    dataset = settings.load()
    info = describe_dataset(dataset)
    console.print(repr(dataset), markup=False)
    console.print(f"source: {settings.describe()}", markup=False)
    console.print(
        f"sparsity {info['sparsity']:.4%} (density {info['density']:.4%}); median "
        f"{info['interactions_per_user_median']:g} interactions per user; "
        f"{info['repeat_events']:,} repeat (user, item) events",
        markup=False,
    )
    for label, stats in info["labels"].items():
        console.print(
            f"label {label}: {stats['min']:g} to {stats['max']:g}, mean {stats['mean']:.3f}, "
            f"{stats['distinct']} distinct values",
            markup=False,
        )
    if "timestamps" in info:
        span = info["timestamps"]
        shown = (
            f"{span['from']} to {span['to']}"
            if "from" in span
            else f"{span['min']:g} to {span['max']:g}"
        )
        console.print(f"timestamps: {shown}", markup=False)
    else:
        console.print("timestamps: none (temporal and leave-one-out splits use row order)")
    console.print(f"item columns: {info['item_columns']}", markup=False)
    console.print(f"user columns: {info['user_columns']}", markup=False)
    without_text = info["items_without_text"]
    console.print(
        "items without text: "
        + (
            "no text column" if without_text is None else f"{without_text:,} of {dataset.n_items:,}"
        ),
        markup=False,
    )
    console.print(
        f"items without interactions: {info['items_without_interactions']:,}; users without "
        f"interactions: {info['users_without_interactions']:,}",
        markup=False,
    )


def _data_config(spec: str, data_dir: Path | None = None, download: bool = False) -> Any:
    """A ``DataConfig`` from a registered name, an events file or a TOML config's [data]."""
    from ._settings import read_toml
    from .data import DataConfig, list_datasets

    override: dict[str, Any] = {"data_dir": str(data_dir)} if data_dir is not None else {}
    if download:
        override["download"] = True
    if spec in list_datasets():
        return DataConfig.from_dict({"name": spec, **override}, source="--data")
    path = Path(spec)
    if path.suffix.lower() == ".toml":
        raw = read_toml(path)
        section = raw.get("data", raw if "name" in raw or "path" in raw else None)
        if not isinstance(section, dict):
            raise ParetorecError(f"config: {path} has no [data] section")
        return DataConfig.from_dict({**section, **override}, source=f"{path} [data]")
    looks_like_file = path.exists() or any(
        part in {".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json", ".tab"}
        for part in (s.lower() for s in path.suffixes)
    )
    if looks_like_file:
        return DataConfig.from_dict({"path": spec, **override}, source="--data")
    return DataConfig.from_dict({"name": spec, **override}, source="--data")


@data_app.command("download")
@_friendly_errors
def data_download(
    name: Annotated[str, typer.Argument(help="Data set name.")],
    cache_dir: Annotated[Path | None, typer.Option(help="Where to put it.")] = None,
    url: Annotated[str | None, typer.Option(help="Mirror URL of the official archive.")] = None,
    sha256: Annotated[
        str | None, typer.Option(help="Expected sha256 of the mirror's archive.")
    ] = None,
) -> None:
    """Download a data set's official release and verify its checksums."""
    from .data import download_dataset

    path = download_dataset(name, cache_dir, url=url, sha256=sha256)
    console.print(f"verified and stored in {path}")


@app.command("evaluate")
@_friendly_errors
def evaluate(
    model: Annotated[
        str,
        typer.Option(help="Candidate model (random, popularity, itemknn, ease, bpr, sequential)."),
    ] = "ease",
    data: Annotated[
        str,
        typer.Option(
            "--data",
            "--dataset",
            help="A registered data set, an events file (columns guessed) or a TOML config "
            "whose [data] section (table, mapping, split) is used.",
        ),
    ] = "movielens-100k",
    k: Annotated[int, typer.Option(help="List length.")] = 10,
    ratio: Annotated[
        float | None, typer.Option(help="Training share (default: the config's, else 0.75).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Split seed (default: the config's).")] = None,
    data_dir: DataDir = None,
    download: Download = False,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Tune the model's main hyper-parameter on validation (carved from training) "
            "with Optuna first, and print the chosen value.",
        ),
    ] = False,
    tune_trials: Annotated[int, typer.Option(help="Trials of --tune.")] = 12,
) -> None:
    """Fit one candidate model on the data's split (per-user stratified by default) and
    print every metric."""
    from ._validation import check_fraction, check_positive_int
    from .evaluation import evaluate_ranking
    from .models import create_model

    k = check_positive_int(k, "k")
    settings = _data_config(data, data_dir, download)
    update: dict[str, Any] = {}
    if ratio is not None:
        update["ratio"] = check_fraction(ratio, "ratio")
    if seed is not None:
        update["seed"] = seed
    if update:
        settings = settings.model_copy(update=update)
    tune_trials = check_positive_int(tune_trials, "tune_trials")
    params = _progress_params(model)
    candidate = create_model(model, **params)  # parameters checked first
    dataset = settings.load()
    split, inner = settings.splits(dataset)
    if tune:
        from .evaluation import tune_main_parameter

        if inner.valid is None:  # every split of DataConfig carves a validation part
            raise ParetorecError("the split has no validation part to tune on")
        console.print(
            f"tuning {model} on validation ({inner.valid.n_interactions:,} interactions, "
            f"{tune_trials} trials) ...",
            markup=False,
        )
        quiet = {name: False for name in params}  # one progress bar per trial is noise
        tuned = tune_main_parameter(
            model, inner.train, inner.valid, k=k, n_trials=tune_trials, params=quiet
        )
        console.print(f"tuned {tuned.describe(model, f'ndcg@{k}')}", markup=False)
        if tuned.parameter is not None:
            candidate = create_model(model, **params, **{tuned.parameter: tuned.value})
    console.print(
        f"{settings.describe()}: train {split.train.n_interactions:,} / test "
        f"{split.test.n_interactions:,}; fitting {model} ...",
        markup=False,
    )
    fitted = candidate.fit(split.train)
    result = evaluate_ranking(fitted, split.test, k=k, progress=True)
    for name, value in result.metrics.items():
        console.print(f"{name:>24s}  {value:.4f}")


def _progress_params(model: str) -> dict[str, Any]:
    """Progress-bar settings of models that train for minutes (they print per epoch)."""
    import inspect

    from .models import get_model_class

    parameters = inspect.signature(get_model_class(model).__init__).parameters
    for name in ("show_progress", "progress"):
        if name in parameters:
            return {name: True}
    return {}


class _BenchCommand(TyperCommand):
    """``bench --help`` lists the benchmarks (imported only when help is shown)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from .benchmarks import BENCHMARKS

        listing = "Benchmarks: " + ", ".join(sorted(BENCHMARKS)) + "."
        if listing not in (self.help or ""):
            self.help = f"{self.help or ''}\n\n{listing}"
        super().format_help(ctx, formatter)


@app.command("bench", cls=_BenchCommand)
@_friendly_errors
def bench(
    name: Annotated[str, typer.Argument(help="Benchmark name (listed above).")],
    output_dir: Annotated[Path, typer.Option(help="Where results JSON goes.")] = Path(
        "benchmarks/results"
    ),
    data_dir: DataDir = None,
    quick: Annotated[bool, typer.Option(help="Smaller grids / fewer epochs (smoke test).")] = False,
    allow_dirty: Annotated[
        bool,
        typer.Option(
            help="Run from a tree with uncommitted changes; the result is marked as such."
        ),
    ] = False,
) -> None:
    """Run a benchmark: print its table and write OUTPUT_DIR/NAME.json.

    Refused from a working tree with uncommitted changes to tracked files (the result could
    not name its code) unless --allow-dirty is given.
    """
    from .benchmarks import BENCHMARKS
    from .benchmarks._harness import provenance

    if name not in BENCHMARKS:
        raise ParetorecError(
            f"benchmark must be one of {', '.join(sorted(BENCHMARKS))}; got {name!r}"
        )
    with provenance(allow_dirty):
        BENCHMARKS[name](output_dir, data_dir=data_dir, quick=quick)


@app.command("pareto")
@_friendly_errors
def pareto(
    config: Annotated[Path, typer.Argument(help="TOML experiment config (see examples/).")],
    output_dir: Annotated[
        Path | None, typer.Option(help="Run folder (default: the config's output_dir).")
    ] = None,
    n_trials: Annotated[int | None, typer.Option(help="Override search.n_trials.")] = None,
    data_dir: DataDir = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes searching one study (override search.workers); more can join "
            "with `paretorec pareto-worker STORAGE`."
        ),
    ] = None,
    bundle: Annotated[
        bool, typer.Option(help="Also write a serving bundle to RUN_DIR/bundle.")
    ] = True,
) -> None:
    """Search policies for the Pareto front, check it on test, write the run folder."""
    from .config import ParetoConfig
    from .pareto import print_front, run_pareto
    from .reporting import write_pareto_report

    settings = ParetoConfig.from_toml(config)
    if workers is not None:
        from ._validation import check_positive_int

        search = settings.search.model_copy(
            update={"workers": check_positive_int(workers, "workers")}
        )
        settings = settings.model_copy(update={"search": search})
    if n_trials is not None:
        from ._validation import check_positive_int

        search = settings.search.model_copy(
            update={"n_trials": check_positive_int(n_trials, "n_trials")}
        )
        settings = settings.model_copy(update={"search": search})
    if data_dir is not None:
        data = settings.data.model_copy(update={"data_dir": str(data_dir)})
        settings = settings.model_copy(update={"data": data})
    run = run_pareto(settings, output_dir=output_dir, console=console)
    print_front(run, console=console)
    report = write_pareto_report(run, run.output_dir or settings.output_dir)
    console.print(f"report: {report.resolve()}")
    if bundle:
        from .serving import export_bundle

        path = export_bundle(run, Path(run.output_dir or settings.output_dir) / "bundle")
        console.print(f"bundle: {path.resolve()}  (serve it: paretorec serve {path})")


@app.command("pareto-worker")
@_friendly_errors
def pareto_worker(
    storage: Annotated[
        str,
        typer.Argument(
            help="The study's storage: the run folder's journal file (shared file system) "
            "or the RDB URL the coordinator uses (postgresql://...)."
        ),
    ],
    study_name: Annotated[
        str | None, typer.Option(help="One study (default: every one with trials left).")
    ] = None,
    data_dir: DataDir = None,
    worker: Annotated[
        int | None, typer.Option(help="Seed offset of this worker (default: host and pid).")
    ] = None,
) -> None:
    """Join a running `paretorec pareto` search from this machine until its budget is spent."""
    from .pareto._distributed import join_search

    done = join_search(
        storage, study_name=study_name, data_dir=data_dir, worker=worker, console=console
    )
    console.print(f"evaluated {sum(done.values())} trials in {len(done)} studies", markup=False)


@app.command("train")
@_friendly_errors
def train(
    config: Annotated[Path, typer.Argument(help="TOML training config (see examples/).")],
    output_dir: Annotated[
        Path | None, typer.Option(help="Run folder (default: the config's output_dir).")
    ] = None,
    data_dir: DataDir = None,
    epochs: Annotated[int | None, typer.Option(help="Override trainer.epochs.")] = None,
    nproc: Annotated[
        int | None,
        typer.Option(
            help="Data-parallel processes on this machine: re-runs this command under "
            "`torchrun --nproc-per-node N` (gloo on the CPU, NCCL on GPUs). For several "
            "machines run torchrun yourself (README: Scaling out)."
        ),
    ] = None,
) -> None:
    """Train a multi-task ranker (any architecture x strategy) from a TOML config."""
    from rich.table import Table

    from ._validation import check_positive_int
    from .multitask import TrainConfig, run_training

    if nproc is not None:
        _torchrun(check_positive_int(nproc, "nproc"))
        return
    from ._distributed import init_distributed, is_main_process

    settings = TrainConfig.from_toml(config)
    raw = settings.model_dump(mode="json")
    if output_dir is not None:
        raw["output_dir"] = str(output_dir)
    if data_dir is not None:
        raw["data"]["data_dir"] = str(data_dir)
    if epochs is not None:
        raw["trainer"]["epochs"] = check_positive_int(epochs, "epochs")
    settings = TrainConfig.from_dict(raw, source=str(config))
    ddp = init_distributed(settings.trainer.device)  # under torchrun: join its process group
    if not is_main_process():  # rank 0 reports and writes; the others train
        run_training(settings, save=False)
        return
    console.print(
        f"training {settings.model.architecture} with strategy {settings.strategy.name!r} "
        f"on {settings.data.dataset}"
        + (f" with {ddp.world_size} data-parallel processes" if ddp else "")
        + " ...",
        markup=False,
    )
    result = run_training(settings)
    table = Table(title=f"{settings.name}: validation and test", expand=False)
    table.add_column("metric", style="bold")
    table.add_column("valid", justify="right")
    table.add_column("test", justify="right")
    for name in result["test"]:
        valid = result["valid"].get(name)
        table.add_row(
            name,
            "-" if valid is None else f"{valid:.4f}",
            "-" if result["test"][name] is None else f"{result['test'][name]:.4f}",
        )
    console.print(table)
    console.print(
        f"best epoch {result['best_epoch']} of {result['epochs_run']}, "
        f"{result['samples_per_second']:,.0f} samples/s; "
        f"model and metrics in {result['output_dir']}",
        markup=False,
    )


def _torchrun(nproc: int) -> None:
    """Re-run this ``train`` command under torchrun with ``nproc`` processes, without
    ``--nproc`` (torchrun sets WORLD_SIZE / RANK, which make the trainer data-parallel)."""
    import subprocess

    argv = sys.argv[1:]
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        kept.append(arg)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "paretorec.cli",
        *kept,
    ]
    console.print("running: " + " ".join(command), markup=False)
    code = subprocess.call(command)
    if code:
        raise typer.Exit(code=code)


@app.command("demo")
@_friendly_errors
def demo(
    data_dir: DataDir = None,
    download: Download = False,
    output_dir: Annotated[Path, typer.Option(help="Run folder for the report.")] = Path(
        "runs/demo"
    ),
    quick: Annotated[bool, typer.Option(help="Fewer training epochs (smoke test).")] = False,
) -> None:
    """The whole pipeline on MovieLens-100k: load, split, train baselines, report."""
    from .demo import run_demo

    run_demo(
        data_dir=data_dir, download=download, output_dir=output_dir, quick=quick, console=console
    )


@app.command("export")
@_friendly_errors
def export(
    run_dir: Annotated[Path, typer.Argument(help="Folder of a finished `paretorec pareto` run.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Bundle folder to write.")],
    text_encoder: Annotated[
        str, typer.Option(help="Language model for item texts ('default', a folder, or 'none').")
    ] = "default",
    ann: Annotated[
        str,
        typer.Option(
            help="Candidate retrieval index for bpr / sequential candidates: auto (exact "
            "below 50,000 items, IVF-SQ8 above), flat, ivf, ivf_sq8, hnsw or none."
        ),
    ] = "auto",
) -> None:
    """Write a serving bundle (models, items, front, config; checksummed) from a run folder."""
    from .serving import export_bundle

    encoder = None if text_encoder.lower() == "none" else text_encoder
    path = export_bundle(
        run_dir, output, text_encoder=encoder, ann=None if ann.lower() == "none" else ann
    )
    console.print(f"bundle: {path.resolve()}  (serve it: paretorec serve {path})")


@app.command("serve")
@_friendly_errors
def serve(
    bundle: Annotated[Path, typer.Argument(help="Bundle folder (paretorec export).")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    feedback_url: Annotated[
        str | None,
        typer.Option(
            help="Feedback store: SQLAlchemy URL or SQLite file ($PARETOREC_FEEDBACK_URL)."
        ),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn).")] = True,
    bandit: Annotated[
        str | None,
        typer.Option(help="Bandit for point 'auto': thompson, linucb or epsilon_greedy."),
    ] = None,
    bandit_state: Annotated[
        Path | None, typer.Option(help="The bandit's state file (survives restarts).")
    ] = None,
    retrieval: Annotated[
        str,
        typer.Option(
            help="Candidates: auto (the bundle's ANN index when approximate), ann or exact."
        ),
    ] = "auto",
) -> None:
    """Serve a bundle over HTTP (FastAPI + uvicorn): /recommend, /feedback, /items, /front."""
    import os

    from ._validation import check_choice, check_positive_int
    from .serving._app import BANDIT_ENV, BANDIT_STATE_ENV, FEEDBACK_ENV, RETRIEVAL_ENV
    from .serving._app import serve as run_server

    if feedback_url:
        os.environ[FEEDBACK_ENV] = feedback_url
    if bandit:
        os.environ[BANDIT_ENV] = check_choice(
            bandit, "bandit", ("thompson", "linucb", "epsilon_greedy")
        )
    if bandit_state:
        os.environ[BANDIT_STATE_ENV] = str(bandit_state)
    os.environ[RETRIEVAL_ENV] = check_choice(retrieval, "retrieval", ("auto", "ann", "exact"))
    run_server(
        bundle,
        host=host,
        port=port,
        workers=check_positive_int(workers, "workers"),
        access_log=access_log,
    )


@app.command("recommend")
@_friendly_errors
def recommend(
    bundle: Annotated[Path, typer.Argument(help="Bundle folder (paretorec export).")],
    user: Annotated[
        str | None, typer.Option(help="User id (unknown ids get the fallback).")
    ] = None,
    history: Annotated[
        str | None, typer.Option(help="Comma-separated item ids for an anonymous user.")
    ] = None,
    k: Annotated[int, typer.Option(help="List length.")] = 10,
    point: Annotated[str | None, typer.Option(help="Front point id or 'knee'.")] = None,
    preference: Annotated[
        str | None, typer.Option(help="Objective weights, e.g. ndcg=2,ild=1.")
    ] = None,
    constraint: Annotated[
        list[str] | None, typer.Option(help="e.g. 'ndcg >= 0.95 * best' (repeatable).")
    ] = None,
    explain: Annotated[bool, typer.Option(help="Say why each item is there.")] = False,
) -> None:
    """Print one user's list at a chosen operating point, with item titles."""
    from .serving import Recommender

    weights = _parse_weights(preference) if preference else None
    recommender = Recommender.load(bundle)
    result = recommender.recommend(
        user,
        history=[h.strip() for h in history.split(",") if h.strip()] if history else None,
        k=k,
        point=point,
        preference=weights,
        constraints=constraint or None,
        explain=explain,
    )
    chosen = result.point
    expected = ", ".join(f"{name}={value:.4f}" for name, value in chosen["expected"].items())
    who = f"user {user}" if user is not None else "anonymous history"
    note = f" (cold start: {result.fallback})" if result.fallback else ""
    console.print(
        f"{who}{note}; point {chosen['id']} ({chosen['chosen_by']}): {chosen['describe']}",
        markup=False,
    )
    console.print(f"expected on test: {expected}", markup=False)
    for item in result.items:
        console.print(
            f"{item.rank:>3}. {item.title}  [{item.item_id}]  score {item.score:.4f}", markup=False
        )
        if item.explanation:
            for line in item.explanation.get("text", []):
                console.print(f"       {line}", markup=False)


def _parse_weights(text: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ParetorecError(
                "preference must read NAME=WEIGHT[,NAME=WEIGHT...], e.g. ndcg=2,ild=1; "
                f"got {text!r}"
            )
    return weights


# --------------------------------------------------------------------------- online learning
@app.command("ope")
@_friendly_errors
def ope(
    logs: Annotated[
        Path, typer.Argument(help="Logged feedback: a CSV/Parquet table or an OBD folder.")
    ],
    policy: Annotated[
        str,
        typer.Option(help="Point to evaluate: a name, 'a=0.7,b=0.3', 'uniform' or (OBD) 'bts'."),
    ],
    campaign: Annotated[str, typer.Option(help="OBD campaign: all, men, women.")] = "all",
    action_col: Annotated[str, typer.Option(help="Column of the served point.")] = "point",
    reward_col: Annotated[str, typer.Option(help="Column of the reward.")] = "reward",
    pscore_col: Annotated[str, typer.Option(help="Column of the logged propensity.")] = (
        "propensity"
    ),
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 12345,
    reward_model: Annotated[
        str,
        typer.Option(help="DM/DR reward model: 'logistic' or 'ranker' (multi-task ranker)."),
    ] = "logistic",
) -> None:
    """Off-policy estimates (IPS, SNIPS, DM, DR) of POLICY from LOGS, with 95% intervals."""
    from rich.table import Table

    from .online._logs import evaluate_logs

    estimates, info = evaluate_logs(
        logs,
        policy,
        campaign=campaign,
        n_bootstrap=n_bootstrap,
        seed=seed,
        reward_model=reward_model,
        table_options={
            "action_col": action_col,
            "reward_col": reward_col,
            "pscore_col": pscore_col,
        },
    )
    table = Table(title=f"policy {policy!r} on {info['source']} ({info['n_rounds']:,} rounds)")
    for column in ("estimator", "value", "95% interval", "eff. sample size"):
        table.add_column(column)
    for name, e in estimates.items():
        table.add_row(
            name,
            f"{e.value:.6f}",
            f"[{e.lower:.6f}, {e.upper:.6f}]",
            f"{e.effective_sample_size:,.0f}",
        )
    console.print(table)
    console.print(f"logged mean reward: {info['logged_mean_reward']:.6f}")
    if "observed" in info:
        console.print(
            f"observed value of the evaluated policy (its own logs): {info['observed']:.6f}"
        )
    if "note" in info:
        console.print(info["note"])


@app.command("simulate")
@_friendly_errors
def simulate(
    config: Annotated[
        Path | None, typer.Argument(help="TOML/JSON simulation config (default: built-in).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write the full result JSON here.")] = None,
    n_rounds: Annotated[int | None, typer.Option(help="Override n_rounds.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Save the reward-over-rounds plot.")] = None,
) -> None:
    """Simulated A/B test of two front points, OPE of B from A's logs, and the bandit."""
    import json

    from .online._simulation import load_simulation_config, plot_simulation, run_simulation

    settings = load_simulation_config(config)
    if n_rounds is not None:
        settings["n_rounds"] = n_rounds
    result = run_simulation(settings, progress=True)
    for run in result["runs"]:
        ab, ope_run, bandit = run["ab"], run["ope"], run["bandit"]
        console.print(f"[bold]seed {run['seed']}[/bold]")
        for arm in ("a", "b"):
            r = ab[arm]
            console.print(
                f"  {arm.upper()} {settings['arm_' + arm]:>10}: reward {r['mean']:.4f} "
                f"[{r['lower']:.4f}, {r['upper']:.4f}]  true {r['true']:.4f}"
            )
        lift = ab["lift"]
        console.print(
            f"  lift B-A: {lift['mean']:+.4f} [{lift['lower']:+.4f}, "
            f"{lift['upper']:+.4f}]  true {lift['true']:+.4f}  "
            f"(relative {ab['relative_lift']:+.1%}; interval coverage over "
            f"{ab['replicates']} replicates {ab['coverage']:.0%})"
        )
        for name, e in ope_run["estimates"].items():
            console.print(
                f"  OPE of B from A's logs, {name:>5}: {e['value']:.4f} "
                f"[{e['lower']:.4f}, {e['upper']:.4f}]  true "
                f"{ope_run['true_value_b']:.4f}  error {e['relative_error']:.1%}"
            )
        console.print(
            f"  bandit ({bandit['policy']}): reward {bandit['mean_reward']:.4f}, "
            f"regret {bandit['cumulative_regret']:.1f} vs random "
            f"{bandit['random_cumulative_regret']:.1f} "
            f"(ratio {bandit['regret_vs_random']:.3f}), "
            f"lift vs best fixed point {bandit['lift_vs_best_fixed_point']:+.1%}"
        )
    console.print(f"[bold]summary[/bold] {json.dumps(result['summary'])}")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2, default=str))
    if plot is not None:
        console.print(f"plot: {plot_simulation(result, plot)}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
