"""Atomic safetensors + JSON artifacts with a checksum manifest (no pickle)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from ._validation import ChecksumError, DataFileError

MANIFEST = "manifest.json"


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_artifact(
    directory: str | Path, config: dict[str, Any], tensors: dict[str, np.ndarray]
) -> Path:
    """Write ``config.json`` + ``tensors.safetensors`` + manifest atomically to ``directory``.

    Files are written to a sibling temporary folder which then replaces ``directory``, so
    a crash never leaves a half-written artifact behind.
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        contiguous = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        save_file(contiguous, str(staging / "tensors.safetensors"))
        manifest = {
            name: sha256_file(staging / name) for name in ("config.json", "tensors.safetensors")
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_artifact(directory: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read an artifact written by :func:`write_artifact`, verifying every checksum."""
    source = Path(directory)
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise DataFileError(f"path: no saved artifact at {source} (missing {MANIFEST})")
    manifest = _read_json(manifest_path)
    if not isinstance(manifest, dict):
        raise DataFileError(f"path: {manifest_path} is not a manifest (a JSON object)")
    for name, expected in manifest.items():
        file = source / name
        if not file.is_file():
            raise DataFileError(f"path: artifact file missing: {file}")
        actual = sha256_file(file)
        if actual != expected:
            raise ChecksumError(
                f"path: {file} is corrupt: sha256 {actual} does not match manifest {expected}"
            )
    config = _read_json(source / "config.json")
    tensors = load_file(str(source / "tensors.safetensors"))
    return config, tensors


def _read_json(path: Path) -> Any:
    """Parsed JSON of ``path``; a truncated or garbled file is named in the error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(
            f"path: {path} is not valid JSON ({exc}); the artifact is truncated or "
            "corrupt: save it again"
        ) from None


def replace_folder(staging: Path, target: Path) -> None:
    """Put the finished folder ``staging`` in place of ``target`` (renames, not copies)."""
    if target.exists():
        backup = target.with_name(f".{target.name}.old")
        shutil.rmtree(backup, ignore_errors=True)
        os.replace(target, backup)
        os.replace(staging, target)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(staging, target)
