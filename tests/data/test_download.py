"""Dataset location and verified downloads, served from a loopback HTTP server.

The real files come from the shared data folder named by ``PARETOREC_DATA_DIR`` (tests that
need them skip when it is missing). Every socket a test opens goes to 127.0.0.1: an autouse
guard makes any other address fail loudly.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import shutil
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paretorec import ChecksumError, DataFileError, ParetorecError
from paretorec.data._download import (
    AMAZON_SCIENTIFIC,
    DATASETS,
    MOVIELENS_1M,
    MOVIELENS_1M_PARTIAL,
    MOVIELENS_100K,
    DatasetSource,
    dataset_layout,
    default_cache_dir,
    download_dataset,
    get_source,
    locate_dataset,
    verify_dataset,
)

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    return _sha256(path.read_bytes())


# --------------------------------------------------------------------------- guards, env


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to resolve or reach a non-loopback address."""
    allowed = {LOOPBACK, "localhost", "::1"}
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in allowed:
            raise OSError(f"test guard: refusing to resolve non-loopback host {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in allowed:
            raise OSError(f"test guard: refusing to connect to {address!r}")
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(autouse=True)
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test gets its own empty cache; nothing is ever written to ~/.cache."""
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("PARETOREC_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def shared_data() -> Path:
    env = os.environ.get("PARETOREC_DATA_DIR", "").strip()
    folder = Path(env) if env else REPO.parent / "shared" / "data"
    if not folder.is_dir():
        reason = (
            f"PARETOREC_DATA_DIR={env} is not a folder"
            if env
            else "PARETOREC_DATA_DIR is unset and <repo>/../shared/data does not exist"
        )
        pytest.skip(f"shared data folder not available: {reason}")
    return folder


def _shared_folder(shared_data: Path, source: DatasetSource) -> Path:
    folder = shared_data / source.folder
    missing = [name for name in source.files if not (folder / name).is_file()]
    if missing:
        pytest.skip(f"shared data: {folder} lacks {', '.join(missing)}")
    return folder


@pytest.fixture(scope="module")
def ml100k_files(shared_data: Path) -> dict[str, bytes]:
    """Contents of every MovieLens-100k file the official zip carries, from shared data."""
    folder = _shared_folder(shared_data, MOVIELENS_100K)
    names = [*MOVIELENS_100K.files, *MOVIELENS_100K.optional_files]
    return {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}


def _zip_bytes(members: dict[str, bytes], *, directory: str | None = "ml-100k/") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        if directory:
            bundle.writestr(zipfile.ZipInfo(directory), b"")
        for name, data in members.items():
            bundle.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def _official_layout(files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"ml-100k/{name}": data for name, data in files.items()}


@pytest.fixture(scope="module")
def ml100k_zip(ml100k_files: dict[str, bytes]) -> bytes:
    return _zip_bytes(_official_layout(ml100k_files))


# --------------------------------------------------------------------------- the server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _TruncatingHandler(http.server.BaseHTTPRequestHandler):
    """Announces 1000 bytes, sends 10, then closes the connection."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"0123456789")

    def log_message(self, format: str, *args: Any) -> None:
        pass


Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start loopback HTTP servers; ``serve(folder)`` returns the base URL of ``folder``."""
    servers: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(directory: Path | None = None, handler: Any = None) -> str:
        if handler is None:
            handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://{LOOPBACK}:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def serve_zip(serve: Serve, tmp_path: Path) -> Callable[..., str]:
    """Serve ``data`` as ``ml-100k.zip`` and return its URL."""
    www = tmp_path / "www"
    www.mkdir()
    base = serve(www)

    def publish(data: bytes, name: str = "ml-100k.zip") -> str:
        (www / name).write_bytes(data)
        return f"{base}/{name}"

    return publish


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback URL whose port is bound but not listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}/ml-100k.zip"


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# --------------------------------------------------------------------------- registry


def test_registry_is_well_formed() -> None:
    folders = [source.folder for source in DATASETS.values()]
    assert len(folders) == len(set(folders))
    for key, source in DATASETS.items():
        assert key == source.name
        hashes = [*source.files.values(), *source.optional_files.values(), source.archive_sha256]
        for digest in hashes:
            assert digest is None or (len(digest) == 64 and int(digest, 16) >= 0)
        for url in source.urls:
            assert url.startswith("https://")
    assert MOVIELENS_100K.archive_prefix == "ml-100k/"
    assert MOVIELENS_1M.alternatives == ("movielens-1m-partial",)
    assert not MOVIELENS_1M_PARTIAL.downloadable
    assert "db47560c2364650d22afc77080717287daec5079" in AMAZON_SCIENTIFIC.urls[0]
    assert get_source("amazon-scientific-unisrec") is AMAZON_SCIENTIFIC


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PARETOREC_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("PARETOREC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "paretorec" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "paretorec" / "datasets"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: get_source("ml-10m"), r"name must be one of 'movielens-100k', .*got 'ml-10m'"),
        (lambda: locate_dataset(3), r"name must be one of .*got 3"),  # type: ignore[arg-type]
        (
            lambda: locate_dataset("movielens-100k", 3.5),  # type: ignore[arg-type]
            r"data_dir must be a path .*got 3\.5",
        ),
        (
            lambda: download_dataset("movielens-100k", sha256="abc"),
            r"sha256 must be a 64-character hex sha256 digest, got 'abc'",
        ),
        (
            lambda: download_dataset("movielens-100k", url="ftp://example.org/ml-100k.zip"),
            r"url must be an http:// or https:// URL, got 'ftp://example.org/ml-100k.zip'",
        ),
        (
            lambda: download_dataset("movielens-100k", url="file:///etc/passwd"),
            r"url must be an http:// or https:// URL, got 'file:///etc/passwd'",
        ),
        (
            lambda: download_dataset("movielens-100k", timeout=0),
            r"timeout must be a positive number of seconds, got 0",
        ),
        (
            lambda: download_dataset("amazon-scientific", sha256="0" * 64),
            r"sha256 applies to archive downloads only; 'amazon-scientific'",
        ),
        (
            lambda: download_dataset("movielens-1m-partial"),
            r"'movielens-1m-partial' cannot be downloaded.*'movielens-1m'",
        ),
    ],
)
def test_bad_arguments_name_the_argument_and_value(
    call: Callable[[], Any], message: str, cache: Path
) -> None:
    with pytest.raises(ParetorecError, match=message):
        call()
    assert _leftovers(cache) == []


# --------------------------------------------------------------------------- zip download


def test_download_movielens_100k_from_loopback(
    serve_zip: Callable[..., str],
    ml100k_zip: bytes,
    ml100k_files: dict[str, bytes],
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = serve_zip(ml100k_zip)
    folder = download_dataset(
        "movielens-100k", cache_dir=cache, url=url, sha256=_sha256(ml100k_zip), progress=True
    )
    assert "downloading" in capsys.readouterr().err
    assert folder == cache / "movielens-100k"
    assert _leftovers(cache) == ["movielens-100k"]  # no temporary folder left behind
    assert sorted(p.name for p in folder.iterdir()) == sorted(ml100k_files)
    for name in ml100k_files:
        assert _file_sha256(folder / name) == MOVIELENS_100K.expected_sha256(name)
    verify_dataset("movielens-100k", folder)

    monkeypatch.delenv("PARETOREC_DATA_DIR", raising=False)
    assert locate_dataset("movielens-100k") == folder
    assert dataset_layout("movielens-100k", folder) == "movielens-100k"


def test_second_download_reuses_the_cache(
    serve_zip: Callable[..., str], ml100k_zip: bytes, cache: Path, refused_url: str
) -> None:
    url = serve_zip(ml100k_zip)
    folder = download_dataset("movielens-100k", url=url, sha256=_sha256(ml100k_zip), progress=False)
    assert folder == cache / "movielens-100k"
    # Already complete: no network at all, even with an unreachable URL.
    again = download_dataset("movielens-100k", url=refused_url, progress=False)
    assert again == folder


def test_wrong_archive_sha256_keeps_nothing(
    serve_zip: Callable[..., str], ml100k_zip: bytes, cache: Path
) -> None:
    url = serve_zip(ml100k_zip)
    wrong = "0" * 64
    with pytest.raises(ChecksumError, match=rf"ml-100k\.zip: .*{_sha256(ml100k_zip)}.*{wrong}"):
        download_dataset("movielens-100k", cache_dir=cache, url=url, sha256=wrong, progress=False)
    assert _leftovers(cache) == []


def test_mirror_without_sha256_is_checked_against_the_official_hash(
    serve_zip: Callable[..., str], ml100k_zip: bytes, cache: Path
) -> None:
    # The rebuilt zip holds the same files but is not byte-identical to GroupLens' archive.
    url = serve_zip(ml100k_zip)
    with pytest.raises(ChecksumError, match=str(MOVIELENS_100K.archive_sha256)):
        download_dataset("movielens-100k", cache_dir=cache, url=url, progress=False)
    assert _leftovers(cache) == []


@pytest.mark.parametrize("file_name", ["u.data", "u1.test"])
def test_tampered_member_is_rejected_by_its_own_hash(
    serve_zip: Callable[..., str],
    ml100k_files: dict[str, bytes],
    cache: Path,
    file_name: str,
) -> None:
    if file_name not in ml100k_files:
        pytest.skip(f"shared data has no {file_name}")
    files = dict(ml100k_files)
    data = bytearray(files[file_name])
    data[100] = ord("9") if data[100] != ord("9") else ord("8")
    files[file_name] = bytes(data)
    archive = _zip_bytes(_official_layout(files))
    url = serve_zip(archive)
    expected = MOVIELENS_100K.expected_sha256(file_name)
    with pytest.raises(
        ChecksumError, match=rf"^{file_name}: .*{_sha256(bytes(data))}, expected {expected}"
    ):
        download_dataset(
            "movielens-100k", cache_dir=cache, url=url, sha256=_sha256(archive), progress=False
        )
    assert _leftovers(cache) == []


def test_failed_forced_download_keeps_the_existing_folder(
    serve_zip: Callable[..., str],
    ml100k_zip: bytes,
    ml100k_files: dict[str, bytes],
    cache: Path,
) -> None:
    good = serve_zip(ml100k_zip)
    folder = download_dataset(
        "movielens-100k", cache_dir=cache, url=good, sha256=_sha256(ml100k_zip), progress=False
    )
    tampered = dict(ml100k_files)
    tampered["u.item"] = tampered["u.item"][:-1]
    archive = _zip_bytes(_official_layout(tampered))
    bad = serve_zip(archive, "bad.zip")
    with pytest.raises(ChecksumError, match=r"^u\.item: "):
        download_dataset(
            "movielens-100k",
            cache_dir=cache,
            url=bad,
            sha256=_sha256(archive),
            progress=False,
            force=True,
        )
    assert _leftovers(cache) == ["movielens-100k"]
    verify_dataset("movielens-100k", folder)


@pytest.mark.parametrize(
    "member",
    [
        "../evil.txt",
        "ml-100k/../../evil.txt",
        "/tmp/paretorec-evil.txt",
        "..\\evil.txt",
        "C:/evil.txt",
    ],
)
def test_path_traversal_member_is_rejected(
    serve_zip: Callable[..., str],
    ml100k_files: dict[str, bytes],
    cache: Path,
    tmp_path: Path,
    member: str,
) -> None:
    members = _official_layout(ml100k_files)
    members[member] = b"evil"
    archive = _zip_bytes(members)
    url = serve_zip(archive)
    with pytest.raises(DataFileError, match=r"unsafe member"):
        download_dataset(
            "movielens-100k", cache_dir=cache, url=url, sha256=_sha256(archive), progress=False
        )
    assert _leftovers(cache) == []
    assert not list(tmp_path.parent.rglob("evil.txt"))
    assert not Path("/tmp/paretorec-evil.txt").exists()


def test_archive_missing_a_required_file(
    serve_zip: Callable[..., str], ml100k_files: dict[str, bytes], cache: Path
) -> None:
    files = {k: v for k, v in ml100k_files.items() if k != "u.user"}
    archive = _zip_bytes(_official_layout(files))
    url = serve_zip(archive)
    with pytest.raises(DataFileError, match=r"has no member 'ml-100k/u\.user'"):
        download_dataset(
            "movielens-100k", cache_dir=cache, url=url, sha256=_sha256(archive), progress=False
        )
    assert _leftovers(cache) == []


def test_not_a_zip(serve_zip: Callable[..., str], cache: Path) -> None:
    payload = b"<html>not found</html>"
    url = serve_zip(payload)
    with pytest.raises(DataFileError, match=rf"{url} did not return a valid zip archive"):
        download_dataset(
            "movielens-100k", cache_dir=cache, url=url, sha256=_sha256(payload), progress=False
        )
    assert _leftovers(cache) == []


# --------------------------------------------------------------------------- per-file download


def test_amazon_per_file_download(
    serve: Serve, shared_data: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_folder = _shared_folder(shared_data, AMAZON_SCIENTIFIC)
    base = f"{serve(shared_data)}/{AMAZON_SCIENTIFIC.folder}"
    folder = download_dataset("amazon-scientific", cache_dir=cache, url=base, progress=False)
    assert folder == cache / "amazon-scientific-unisrec"
    assert sorted(p.name for p in folder.iterdir()) == sorted(AMAZON_SCIENTIFIC.files)
    for name, digest in AMAZON_SCIENTIFIC.files.items():
        assert _file_sha256(folder / name) == digest == _file_sha256(source_folder / name)
    monkeypatch.delenv("PARETOREC_DATA_DIR", raising=False)
    assert locate_dataset("amazon-scientific") == folder


def test_amazon_tampered_file_names_the_file(
    serve: Serve, shared_data: Path, cache: Path, tmp_path: Path
) -> None:
    source_folder = _shared_folder(shared_data, AMAZON_SCIENTIFIC)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in AMAZON_SCIENTIFIC.files:
        shutil.copyfile(source_folder / name, mirror / name)
    with (mirror / "Scientific.valid.inter").open("ab") as handle:
        handle.write(b"1\t2 3\t4\n")
    with pytest.raises(ChecksumError, match=r"^Scientific\.valid\.inter: .*expected 5f37c84d"):
        download_dataset("amazon-scientific", cache_dir=cache, url=serve(mirror), progress=False)
    assert _leftovers(cache) == []


def test_locate_downloads_when_asked(
    serve: Serve, shared_data: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _shared_folder(shared_data, AMAZON_SCIENTIFIC)
    monkeypatch.delenv("PARETOREC_DATA_DIR", raising=False)
    base = f"{serve(shared_data)}/{AMAZON_SCIENTIFIC.folder}"
    with pytest.raises(DataFileError):
        locate_dataset("amazon-scientific", url=base)
    folder = locate_dataset("amazon-scientific", download=True, url=base, progress=False)
    assert folder == cache / AMAZON_SCIENTIFIC.folder
    verify_dataset("amazon-scientific", folder)


# --------------------------------------------------------------------------- network errors


def test_http_404_names_the_url(serve: Serve, tmp_path: Path, cache: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    url = f"{serve(empty)}/ml-100k.zip"
    with pytest.raises(DataFileError, match=rf"{url} failed: HTTP 404"):
        download_dataset("movielens-100k", cache_dir=cache, url=url, progress=False)
    with pytest.raises(DataFileError, match=r"/Scientific\.text failed: HTTP 404"):
        download_dataset("amazon-scientific", cache_dir=cache, url=serve(empty), progress=False)
    assert _leftovers(cache) == []


def test_connection_refused_names_the_url(refused_url: str, cache: Path) -> None:
    with pytest.raises(DataFileError, match=rf"{refused_url} failed: .*refused"):
        download_dataset("movielens-100k", cache_dir=cache, url=refused_url, progress=False)
    assert _leftovers(cache) == []


def test_timeout_names_the_url(cache: Path) -> None:
    # Listening but never answering: the connection is queued, the response never comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(1)
        url = f"http://{LOOPBACK}:{sock.getsockname()[1]}/ml-100k.zip"
        with pytest.raises(DataFileError, match=rf"{url} failed: .*tim"):
            download_dataset(
                "movielens-100k", cache_dir=cache, url=url, progress=False, timeout=0.3
            )
    assert _leftovers(cache) == []


def test_truncated_body_is_an_error(serve: Serve, cache: Path) -> None:
    url = f"{serve(handler=_TruncatingHandler)}/ml-100k.zip"
    with pytest.raises(DataFileError, match=rf"{url} failed: got 10 bytes.*1000"):
        download_dataset("movielens-100k", cache_dir=cache, url=url, progress=False)
    assert _leftovers(cache) == []


# --------------------------------------------------------------------------- locate order


def _fake_dataset(folder: Path, source: DatasetSource) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in source.files:
        (folder / name).write_text("fake\n")
    return folder


def test_locate_order_argument_then_env_then_cache(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = _fake_dataset(tmp_path / "explicit" / "movielens-100k", MOVIELENS_100K)
    from_env = _fake_dataset(tmp_path / "env" / "movielens-100k", MOVIELENS_100K)
    cached = _fake_dataset(cache / "movielens-100k", MOVIELENS_100K)
    monkeypatch.setenv("PARETOREC_DATA_DIR", str(tmp_path / "env"))

    assert locate_dataset("movielens-100k", tmp_path / "explicit") == explicit  # parent form
    assert locate_dataset("movielens-100k", str(explicit)) == explicit  # folder itself
    assert locate_dataset("movielens-100k") == from_env
    # An explicit folder without the files falls through to the next place.
    assert locate_dataset("movielens-100k", tmp_path / "nothing") == from_env
    monkeypatch.setenv("PARETOREC_DATA_DIR", str(from_env))  # env var naming the folder
    assert locate_dataset("movielens-100k") == from_env
    monkeypatch.delenv("PARETOREC_DATA_DIR")
    assert locate_dataset("movielens-100k") == cached


def test_locate_accepts_an_unpacked_official_zip(tmp_path: Path) -> None:
    unpacked = _fake_dataset(tmp_path / "ml-100k", MOVIELENS_100K)
    assert locate_dataset("movielens-100k", tmp_path) == unpacked


def test_locate_missing_everywhere_lists_the_places(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARETOREC_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DataFileError) as info:
        locate_dataset("movielens-100k", tmp_path / "explicit")
    message = str(info.value)
    for place in (
        tmp_path / "explicit",
        tmp_path / "explicit" / "movielens-100k",
        tmp_path / "env",
        tmp_path / "env" / "movielens-100k",
        cache / "movielens-100k",
    ):
        assert str(place) in message
    for hint in (
        "data_dir argument",
        "$PARETOREC_DATA_DIR",
        "cache",
        "download=True",
        "--download",
    ):
        assert hint in message
    assert "u.data" in message
    assert _leftovers(cache) == []


def test_locate_partial_copy_cannot_be_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARETOREC_DATA_DIR", raising=False)
    with pytest.raises(DataFileError, match=r"cannot be downloaded.*'movielens-1m'"):
        locate_dataset("movielens-1m-partial", tmp_path, download=True)


def test_movielens_1m_partial_layout(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARETOREC_DATA_DIR", raising=False)
    partial = _fake_dataset(tmp_path / "data" / "movielens-1m-partial", MOVIELENS_1M_PARTIAL)
    found = locate_dataset("movielens-1m", tmp_path / "data")
    assert found == partial
    assert dataset_layout("movielens-1m", found) == "movielens-1m-partial"
    with pytest.raises(DataFileError, match=r"ratings\.dat"):
        locate_dataset("movielens-1m", tmp_path / "data", accept_partial=False)

    # In the same place the official release wins over the partial copy.
    full = _fake_dataset(tmp_path / "data" / "movielens-1m", MOVIELENS_1M)
    assert locate_dataset("movielens-1m", tmp_path / "data") == full
    assert dataset_layout("movielens-1m", full) == "movielens-1m"
    with pytest.raises(DataFileError, match=r"does not hold movielens-1m"):
        dataset_layout("movielens-1m", tmp_path)


def test_verify_detects_a_corrupt_file(tmp_path: Path) -> None:
    folder = _fake_dataset(tmp_path / "movielens-100k", MOVIELENS_100K)
    with pytest.raises(ChecksumError, match=r"expected [0-9a-f]{64}"):
        verify_dataset("movielens-100k", folder)


# --------------------------------------------------------------------------- shared data


@pytest.mark.parametrize(
    ("name", "layout"),
    [
        ("movielens-100k", MOVIELENS_100K),
        ("amazon-scientific", AMAZON_SCIENTIFIC),
        ("movielens-1m", MOVIELENS_1M_PARTIAL),
    ],
)
def test_shared_data_matches_the_registry(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, name: str, layout: DatasetSource
) -> None:
    expected = _shared_folder(shared_data, layout)
    monkeypatch.setenv("PARETOREC_DATA_DIR", str(shared_data))
    folder = locate_dataset(name)
    assert folder == expected
    assert dataset_layout(name, folder) == layout.name
    verify_dataset(name, folder)  # the pinned hashes match the real bytes
