"""Where a dataset's files live, and verified downloads of the official releases.

Every dataset paretorec can load has a :class:`DatasetSource` in :data:`DATASETS`: the
folder name it uses under a data directory, the official URL(s), the sha256 of the archive
and of every file. :func:`locate_dataset` finds the files (an explicit ``data_dir``, then
``$PARETOREC_DATA_DIR``, then the user cache) and, when asked, :func:`download_dataset`
fetches the official release into the cache.

Downloads use only the standard library (``urllib``). A download is streamed to a
temporary file inside the cache, its sha256 is checked, only the expected members are
extracted (never a member with an absolute path or ``..``), every extracted file is checked
against its pinned sha256, and only then is the folder renamed into place. A failed,
truncated or tampered download therefore never leaves a half-populated dataset folder.

The licences of these datasets forbid redistribution, so paretorec never ships the data:
users download it from the publisher themselves.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from tqdm.auto import tqdm

from .._artifacts import sha256_file
from .._validation import ChecksumError, DataFileError, ParetorecError, show

__all__ = [
    "CACHE_ENV",
    "DATASETS",
    "DATA_DIR_ENV",
    "DEFAULT_TIMEOUT",
    "DatasetSource",
    "dataset_layout",
    "default_cache_dir",
    "download_dataset",
    "get_source",
    "locate_dataset",
    "verify_dataset",
]

DATA_DIR_ENV = "PARETOREC_DATA_DIR"
CACHE_ENV = "PARETOREC_CACHE_DIR"
DEFAULT_TIMEOUT = 60.0

_CHUNK = 1 << 20
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_ALLOWED_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class DatasetSource:
    """Where one dataset comes from and what its files must hash to.

    Attributes:
        name: registry key, e.g. ``"movielens-100k"``.
        folder: folder name used under a data directory or the cache.
        urls: official download locations, tried in order on network errors. For a zip
            dataset each is the archive URL; for a per-file dataset each is a base URL
            and file ``f`` is fetched from ``<base>/f``. Empty: not downloadable.
        archive_sha256: sha256 of the official archive, or None when no published value
            was found (then only the per-file hashes protect the download).
        archive_prefix: folder inside the archive holding the files (``"ml-100k/"``), or
            None for a dataset downloaded file by file.
        files: required file name -> expected sha256. A folder counts as holding the
            dataset when all of these exist.
        optional_files: files extracted when the archive has them but never required;
            name -> expected sha256, or None when no trustworthy value is known.
        alternatives: names of other layouts :func:`locate_dataset` also accepts for this
            dataset (the partial MovieLens-1M copy), checked after this one.
        description: one line for error messages and listings.
    """

    name: str
    folder: str
    urls: tuple[str, ...]
    archive_sha256: str | None
    archive_prefix: str | None
    files: dict[str, str]
    optional_files: dict[str, str | None] = field(default_factory=dict)
    alternatives: tuple[str, ...] = ()
    description: str = ""

    @property
    def downloadable(self) -> bool:
        return bool(self.urls)

    @property
    def is_archive(self) -> bool:
        return self.archive_prefix is not None

    def expected_sha256(self, file_name: str) -> str | None:
        """The pinned sha256 of ``file_name`` (None when unknown or not part of the set)."""
        if file_name in self.files:
            return self.files[file_name]
        return self.optional_files.get(file_name)


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
_COWPIREC_COMMIT = "db47560c2364650d22afc77080717287daec5079"

# Per-file hashes come from /shared/data/*/SOURCE.md (files byte-identical to the releases).
# Archive hashes: tensorflow/datasets, tensorflow_datasets/url_checksums/movielens.txt
# (commit 1c076ac3c19c8ea83e1d1a75e0623c9a699e0d7c), which records ml-100k.zip as 4,924,029
# bytes and ml-1m.zip as 5,917,549 bytes with the sha256 values below; the same values are
# pinned by several independent projects (e.g. TensorFlow's MovieLens-1M example pins the
# ml-1m.zip value), and the ml-100k value sits beside GroupLens' published MD5
# 0e33842e24a9c977be4e0107933c0723 in projects that checked both.
MOVIELENS_100K = DatasetSource(
    name="movielens-100k",
    folder="movielens-100k",
    urls=(f"{_GROUPLENS}/ml-100k.zip",),
    archive_sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
    archive_prefix="ml-100k/",
    files={
        "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
        "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
        "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
        "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
        "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
        "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
        "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    },
    # The official u1..u5 and ua/ub splits: kept when present, not required to load.
    optional_files={
        "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
        "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
        "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
        "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
        "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
        "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
        "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
        "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
        "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
        "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
        "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
        "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
        "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
        "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
    },
    description="MovieLens 100K (GroupLens): 100,000 ratings, 943 users, 1,682 movies",
)

MOVIELENS_1M = DatasetSource(
    name="movielens-1m",
    folder="movielens-1m",
    urls=(f"{_GROUPLENS}/ml-1m.zip",),
    archive_sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
    archive_prefix="ml-1m/",
    files={
        # ratings.dat is not in SOURCE.md (no complete copy was available offline). This
        # value (24,594,131 bytes) is pinned by several public projects that report it as
        # the member of the official ml-1m.zip; the archive hash above is the primary check.
        "ratings.dat": "506d64ca44484487c11dc2d9a28de5c54948213e6b96285e298afe28d6ea4e0f",
        "movies.dat": "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
        "users.dat": "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
    },
    # The README inside the 2003 zip may predate the text kept in shared/data: not pinned.
    optional_files={"README": None},
    alternatives=("movielens-1m-partial",),
    description="MovieLens 1M (GroupLens): 1,000,209 ratings, 6,040 users, 3,883 movies",
)

MOVIELENS_1M_PARTIAL = DatasetSource(
    name="movielens-1m-partial",
    folder="movielens-1m-partial",
    urls=(),
    archive_sha256=None,
    archive_prefix=None,
    files={
        "movies.dat": "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
        "users.dat": "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
        "ratings_user_movie_pairs.parquet": (
            "b354c7081dd0a6ca6b2711d6ae48d057ade864332ae90e28856372997d88994f"
        ),
    },
    optional_files={
        "README": "2d5ddce86ccbd247207456165827b4b9ddf27282bca93807d4c763e28414f133",
    },
    description=(
        "MovieLens 1M, partial copy: all (user, movie) pairs without ratings or timestamps"
    ),
)

AMAZON_SCIENTIFIC = DatasetSource(
    name="amazon-scientific",
    folder="amazon-scientific-unisrec",
    urls=(
        "https://raw.githubusercontent.com/ysh-1998/CoWPiRec/"
        f"{_COWPIREC_COMMIT}/dataset/Scientific",
    ),
    archive_sha256=None,
    archive_prefix=None,
    files={
        "Scientific.text": "95887e6bda76e54f59b71b566320520d5da74e21d3b6ff8f20bfb6e8e84aa831",
        "Scientific.train.inter": (
            "7284f6489d956fa20c9b64ffc84569264320edba5c3bc2fcb22db2ea083a1163"
        ),
        "Scientific.valid.inter": (
            "5f37c84d3b54617cdc46638c89dfe8741c7efc4987acd5eb64de2cbd4311f46c"
        ),
        "Scientific.test.inter": (
            "546da7e5f44002b4518d7fd58066684bc09613f76c240914e16976d57cfe7083"
        ),
        "Scientific.item2index": (
            "896ab1017508cf20834d3d0537da9f8f624324223a835af272a98ba16f8c087a"
        ),
        "Scientific.user2index": (
            "f0162b1a3a0c6b7e816f86208e7b36f65d6787923126f9558fbc6d368e4c4974"
        ),
    },
    description=(
        "Amazon 2018 Industrial & Scientific in UniSRec format (CoWPiRec's preprocessed "
        "copy): 8,442 users, 4,385 items with text"
    ),
)

DATASETS: Mapping[str, DatasetSource] = {
    source.name: source
    for source in (MOVIELENS_100K, MOVIELENS_1M, MOVIELENS_1M_PARTIAL, AMAZON_SCIENTIFIC)
}
"""Every known dataset by name."""


def get_source(name: str) -> DatasetSource:
    """The :class:`DatasetSource` registered as ``name`` (its folder name is accepted too)."""
    if isinstance(name, str):
        if name in DATASETS:
            return DATASETS[name]
        for source in DATASETS.values():
            if source.folder == name:
                return source
    raise ParetorecError(
        f"name must be one of {', '.join(repr(key) for key in DATASETS)}; got {show(name)}"
    )


def default_cache_dir() -> Path:
    """The folder downloads go to: ``$PARETOREC_CACHE_DIR``, else the user cache.

    The user cache is ``$XDG_CACHE_HOME/paretorec/datasets`` when ``XDG_CACHE_HOME`` is set,
    else ``~/.cache/paretorec/datasets``. Each dataset gets its own ``<folder>`` inside.
    """
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "paretorec" / "datasets"


def _has_files(folder: Path, source: DatasetSource) -> bool:
    return folder.is_dir() and all((folder / name).is_file() for name in source.files)


def _layouts(source: DatasetSource, accept_partial: bool) -> list[DatasetSource]:
    layouts = [source]
    if accept_partial:
        layouts += [DATASETS[name] for name in source.alternatives]
    return layouts


def _folder_names(source: DatasetSource) -> list[str]:
    """Sub-folder names a parent directory may hold this layout under."""
    names = [source.folder]
    if source.archive_prefix:
        # An official zip unpacked in place, e.g. ``<data_dir>/ml-100k``.
        names.append(source.archive_prefix.strip("/"))
    return names


def _candidates(root: Path, layouts: list[DatasetSource]) -> list[tuple[Path, DatasetSource]]:
    found: list[tuple[Path, DatasetSource]] = []
    for layout in layouts:
        found.append((root, layout))
        found += [(root / name, layout) for name in _folder_names(layout)]
    return found


def _check_path(value: Any, name: str) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise ParetorecError(f"{name} must be a path (str or os.PathLike), got {show(value)}")
    text = os.fspath(value)
    if isinstance(text, bytes) or not text.strip():
        raise ParetorecError(f"{name} must be a non-empty path, got {show(value)}")
    return Path(text).expanduser()


def _check_sha256(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256_PATTERN.fullmatch(value.strip().lower()):
        raise ParetorecError(f"{name} must be a 64-character hex sha256 digest, got {show(value)}")
    return value.strip().lower()


def _check_url(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParetorecError(f"{name} must be an http(s) URL string, got {show(value)}")
    parsed = urllib.parse.urlparse(value)
    if parsed.scheme not in _ALLOWED_SCHEMES or not parsed.netloc:
        raise ParetorecError(f"{name} must be an http:// or https:// URL, got {show(value)}")
    return value


def _check_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ParetorecError(f"timeout must be a positive number of seconds, got {show(value)}")
    return float(value)


def dataset_layout(name: str, path: str | Path) -> str:
    """Name of the layout whose required files ``path`` holds.

    For ``"movielens-1m"`` this tells the loader whether :func:`locate_dataset` returned the
    official release (``"movielens-1m"``: ``ratings.dat`` with ratings and timestamps) or
    the partial copy (``"movielens-1m-partial"``: ``ratings_user_movie_pairs.parquet``,
    pairs only). For the other datasets it returns ``name`` itself.

    Raises:
        DataFileError: ``path`` holds no accepted layout of ``name``.
    """
    source = get_source(name)
    folder = _check_path(path, "path")
    for layout in _layouts(source, accept_partial=True):
        if _has_files(folder, layout):
            return layout.name
    missing = [f for f in source.files if not (folder / f).is_file()]
    raise DataFileError(
        f"path: {folder} does not hold {source.name} (missing {', '.join(missing)})"
    )


def verify_dataset(name: str, path: str | Path) -> None:
    """Check every file of ``name`` present in ``path`` against its pinned sha256.

    Required files must exist; optional files (e.g. the MovieLens-100k splits) are checked
    when present. :func:`locate_dataset` only checks that files exist (hashing 25 MB on
    every load is wasteful), so call this when provenance matters.

    Raises:
        DataFileError: a required file is missing.
        ChecksumError: a file's sha256 differs from the pinned value.
    """
    layout = get_source(dataset_layout(name, path))
    folder = Path(path).expanduser()
    expected = {**layout.optional_files, **layout.files}
    for file_name, digest in expected.items():
        file = folder / file_name
        if digest is None or not file.is_file():
            continue
        actual = sha256_file(file)
        if actual != digest:
            raise ChecksumError(
                f"{file_name}: {file} has sha256 {actual}, expected {digest} "
                f"(the file is corrupt or not the {layout.name} release)"
            )


def locate_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    accept_partial: bool = True,
) -> Path:
    """Return the folder holding the files of dataset ``name``.

    Places are searched in this order, and the first that holds every required file wins:

    1. ``data_dir``, either the dataset folder itself or a parent holding the standard
       folder (``<data_dir>/movielens-100k``; an unpacked official zip's ``ml-100k`` works);
    2. ``$PARETOREC_DATA_DIR``, in the same two forms;
    3. the cache, ``default_cache_dir() / <folder>``.

    Only existence is checked here; see :func:`verify_dataset` for the hashes.

    For ``"movielens-1m"`` each place is searched for the official release first and the
    partial copy (``movielens-1m-partial``, ratings without values) second, unless
    ``accept_partial`` is False. Call :func:`dataset_layout` on the returned path to learn
    which one was found.

    Args:
        name: a key of :data:`DATASETS`.
        data_dir: explicit place to look first.
        download: when nothing is found, download the official release into the cache
            (see :func:`download_dataset`) instead of raising.
        url, sha256, progress, timeout: passed on to :func:`download_dataset`.
        accept_partial: accept the partial MovieLens-1M copy for ``"movielens-1m"``.

    Raises:
        DataFileError: the files are in none of the places and ``download`` is False (the
            message lists every place looked at and how to fix it), or the download failed.
        ChecksumError: the download did not match its pinned sha256.
    """
    source = get_source(name)
    layouts = _layouts(source, accept_partial)
    places: list[tuple[str, list[tuple[Path, DatasetSource]]]] = []
    if data_dir is not None:
        root = _check_path(data_dir, "data_dir")
        places.append((f"data_dir argument {root}", _candidates(root, layouts)))
    env_value = os.environ.get(DATA_DIR_ENV, "").strip()
    if env_value:
        root = Path(env_value).expanduser()
        places.append((f"${DATA_DIR_ENV}={root}", _candidates(root, layouts)))
    cache_root = default_cache_dir()
    places.append(
        (
            f"cache {cache_root}",
            [(cache_root / layout.folder, layout) for layout in layouts],
        )
    )

    for _, candidates in places:
        for folder, layout in candidates:
            if _has_files(folder, layout):
                return folder

    if download and source.downloadable:
        return download_dataset(
            source.name, cache_root, url=url, sha256=sha256, progress=progress, timeout=timeout
        )

    looked = "\n".join(
        f"  - {label}: {', '.join(dict.fromkeys(str(folder) for folder, _ in candidates))}"
        for label, candidates in places
    )
    needs = " or ".join(f"{', '.join(layout.files)}" for layout in layouts)
    if source.downloadable:
        fix = (
            f"Set {DATA_DIR_ENV} to a folder holding {source.folder}/, pass data_dir=..., "
            f"or pass download=True (command line: --download) to fetch the official release "
            f"from {source.urls[0]} into {cache_root / source.folder}."
        )
    else:
        fix = (
            f"Set {DATA_DIR_ENV} to a folder holding {source.folder}/ or pass data_dir=...; "
            f"{source.name} cannot be downloaded"
            + (" (the official release is 'movielens-1m')." if "1m" in source.name else ".")
        )
    raise DataFileError(
        f"name: dataset {source.name!r} not found (needs {needs}). Looked in:\n{looked}\n{fix}"
    )


def download_dataset(
    name: str,
    cache_dir: str | Path | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    force: bool = False,
) -> Path:
    """Download the official release of ``name`` into ``<cache_dir>/<folder>`` and verify it.

    The archive (or, for a per-file dataset, each file) is streamed to a temporary file
    inside ``cache_dir``. The archive's sha256 must equal ``sha256`` when given, else the
    registry value; when both are None (a ``url`` mirror of a dataset with no published
    archive hash) the per-file hashes are the only check. Only the expected members are
    extracted, and an archive holding any member with an absolute path or ``..`` is
    rejected. Every file with a pinned sha256 is checked. The new folder is renamed into
    place only when all checks pass, so a failure leaves no trace; an existing folder is
    only replaced by a complete, verified one.

    Args:
        name: a downloadable key of :data:`DATASETS`.
        cache_dir: parent folder; :func:`default_cache_dir` when None.
        url: a mirror to use instead of the official URL: the archive URL for a zip
            dataset, the base URL (files at ``<url>/<file name>``) for a per-file one.
        sha256: expected sha256 of the archive at ``url`` (zip datasets only).
        progress: show a tqdm progress bar on stderr.
        timeout: seconds to wait for the server on each connect or read.
        force: download again even if the folder already holds every required file.

    Returns:
        The dataset folder, ``<cache_dir>/<folder>``.

    Raises:
        DataFileError: network error, HTTP error, truncated body, unsafe or incomplete
            archive (the message names the URL and the reason).
        ChecksumError: the archive or a file does not match its sha256 (the message names
            the file, the expected and the actual hash).
    """
    source = get_source(name)
    if not source.downloadable:
        raise ParetorecError(
            f"name: {source.name!r} cannot be downloaded; it is a local copy only"
            + (" (download 'movielens-1m' for the official release)" if "1m" in name else "")
        )
    mirror = _check_url(url, "url")
    archive_sha256 = _check_sha256(sha256, "sha256")
    if archive_sha256 is not None and not source.is_archive:
        raise ParetorecError(
            f"sha256 applies to archive downloads only; {source.name!r} is downloaded file by "
            f"file and each file is checked against its pinned hash, got sha256={sha256!r}"
        )
    seconds = _check_timeout(timeout)
    root = default_cache_dir() if cache_dir is None else _check_path(cache_dir, "cache_dir")
    target = root / source.folder
    if not force and _has_files(target, source):
        return target

    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFileError(f"cache_dir: cannot create {root}: {exc.strerror or exc}") from exc
    workdir = Path(tempfile.mkdtemp(prefix=f".{source.folder}.download-", dir=root))
    try:
        staging = workdir / source.folder
        staging.mkdir()
        urls = (mirror,) if mirror is not None else source.urls
        if source.is_archive:
            expected = archive_sha256 if archive_sha256 is not None else source.archive_sha256
            _download_archive(source, urls, expected, workdir, staging, progress, seconds)
        else:
            _download_files(source, urls, staging, progress, seconds)
        _replace_folder(staging, target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target


def _download_archive(
    source: DatasetSource,
    urls: tuple[str, ...],
    expected_sha256: str | None,
    workdir: Path,
    staging: Path,
    progress: bool,
    timeout: float,
) -> None:
    archive = workdir / "archive.zip"
    used_url, actual = _fetch_first(urls, archive, progress, timeout, source.name)
    if expected_sha256 is not None and actual != expected_sha256:
        raise ChecksumError(
            f"{Path(urllib.parse.urlparse(used_url).path).name or 'archive'}: sha256 of the "
            f"archive downloaded from {used_url} is {actual}, expected {expected_sha256}; "
            "the download is corrupt or was tampered with, nothing was kept"
        )
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            for info in members:
                _check_member_name(info.filename, used_url)
            by_name = {info.filename: info for info in members if not info.is_dir()}
            prefix = source.archive_prefix or ""
            wanted = [(f, True) for f in source.files] + [(f, False) for f in source.optional_files]
            for file_name, required in wanted:
                entry = by_name.get(prefix + file_name) or by_name.get(file_name)
                if entry is None:
                    if required:
                        raise DataFileError(
                            f"url: the archive from {used_url} has no member "
                            f"{prefix + file_name!r}; it is not the {source.name} release"
                        )
                    continue
                with bundle.open(entry) as member:
                    digest = _copy_hashing(member, staging / file_name)
                _check_file_sha256(source, file_name, digest, used_url)
    except zipfile.BadZipFile as exc:
        raise DataFileError(f"url: {used_url} did not return a valid zip archive: {exc}") from exc


def _download_files(
    source: DatasetSource,
    bases: tuple[str, ...],
    staging: Path,
    progress: bool,
    timeout: float,
) -> None:
    for file_name in source.files:
        urls = tuple(f"{base.rstrip('/')}/{urllib.parse.quote(file_name)}" for base in bases)
        used_url, digest = _fetch_first(urls, staging / file_name, progress, timeout, file_name)
        _check_file_sha256(source, file_name, digest, used_url)


def _check_file_sha256(source: DatasetSource, file_name: str, actual: str, url: str) -> None:
    expected = source.expected_sha256(file_name)
    if expected is not None and actual != expected:
        raise ChecksumError(
            f"{file_name}: sha256 of {file_name} from {url} is {actual}, expected {expected}; "
            "the download is corrupt or was tampered with, nothing was kept"
        )


def _check_member_name(member: str, url: str) -> None:
    """Reject archive members that could land outside the extraction folder."""
    normalised = member.replace("\\", "/")
    parts = PurePosixPath(normalised).parts
    absolute = normalised.startswith("/") or re.match(r"[A-Za-z]:", normalised) is not None
    if absolute or ".." in parts or "\x00" in member:
        raise DataFileError(
            f"url: the archive from {url} holds an unsafe member {member!r} "
            "(absolute path or '..'); refusing to extract anything from it"
        )


def _copy_hashing(stream: IO[bytes], destination: Path) -> str:
    digest = hashlib.sha256()
    with destination.open("xb") as out:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _replace_folder(staging: Path, target: Path) -> None:
    """Move the verified ``staging`` folder to ``target``, replacing any old folder."""
    if target.exists() or target.is_symlink():
        backup = staging.with_name(f"{target.name}.old")
        os.replace(target, backup)
        try:
            os.replace(staging, target)
        except BaseException:
            os.replace(backup, target)
            raise
    else:
        os.replace(staging, target)


def _fetch_first(
    urls: tuple[str, ...], destination: Path, progress: bool, timeout: float, label: str
) -> tuple[str, str]:
    """Fetch the first URL that works; network errors move on, the last one is raised."""
    error = DataFileError(f"url: no URL to download {label} from")
    for url in urls:
        try:
            return url, _fetch(url, destination, progress, timeout, label)
        except DataFileError as exc:
            error = exc
    raise error


def _fetch(url: str, destination: Path, progress: bool, timeout: float, label: str) -> str:
    """Stream ``url`` to ``destination`` and return its sha256."""
    request = urllib.request.Request(url, headers={"User-Agent": "paretorec-downloader"})
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length_header = response.headers.get("Content-Length")
            total = int(length_header) if length_header and length_header.isdigit() else None
            with (
                destination.open("wb") as out,
                _progress_bar(total, label, progress) as bar,
            ):
                for chunk in _chunks(response):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        exc.close()  # an HTTPError holds the open response
        raise DataFileError(f"url: download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DataFileError(f"url: download of {url} failed: {exc.reason}") from exc
    except TimeoutError as exc:
        raise DataFileError(
            f"url: download of {url} failed: no answer within {timeout:g} s (timeout)"
        ) from exc
    except OSError as exc:
        raise DataFileError(f"url: download of {url} failed: {exc}") from exc
    if total is not None and received != total:
        raise DataFileError(
            f"url: download of {url} failed: got {received} bytes, the server announced {total} "
            "(connection closed early)"
        )
    return digest.hexdigest()


def _chunks(response: Any) -> Iterator[bytes]:
    while chunk := response.read(_CHUNK):
        yield chunk


def _progress_bar(total: int | None, label: str, enabled: bool) -> Any:
    return tqdm(
        total=total,
        desc=f"downloading {label}",
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not enabled,
        leave=False,
    )
