"""``model.tar.gz``: written atomically, read back without extracting anything to disk."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

from pydantic import ValidationError

from stageless.errors import NotFoundError, StagelessError, UserError
from stageless.manifest import Manifest

MODEL_FILE = "xgboost-model"
MANIFEST_FILE = "manifest.json"
ARCHIVE_NAME = "model.tar.gz"
#: refuse to read members larger than this (a model is megabytes, not gigabytes)
MAX_MEMBER_BYTES = 2 << 30


def _add(tar: tarfile.TarFile, name: str, payload: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def write_model_archive(directory: Path, model: bytes, manifest: Manifest) -> Path:
    """Write DIRECTORY/model.tar.gz so that it either appears complete or not at all."""
    final = directory / ARCHIVE_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".model.tar.gz.", suffix=".partial", dir=directory)
    except OSError as exc:
        raise _write_error(final, exc) from None
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                now = time.time()
                _add(tar, MODEL_FILE, model, now)
                _add(tar, MANIFEST_FILE, manifest.model_dump_json(indent=2).encode(), now)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, final)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise _write_error(final, exc) from None
        raise
    return final


def _write_error(path: Path, exc: OSError) -> StagelessError:
    """A failed write as one line: the user's to fix when it is a permission problem."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    kind = UserError if isinstance(exc, PermissionError | NotADirectoryError) else StagelessError
    return kind(f"cannot write {path}: {reason}")


def write_model_directory(directory: Path, model: bytes, manifest: Manifest) -> None:
    """The SageMaker container layout: loose files that SageMaker itself tars up."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        MODEL_FILE: model,
        MANIFEST_FILE: manifest.model_dump_json(indent=2).encode(),
    }
    partial = {name: directory / f".{name}.partial" for name in files}
    try:
        # Both complete on disk before either takes its final name, so a failure never
        # pairs a new booster with an old manifest.
        for name, payload in files.items():
            partial[name].write_bytes(payload)
        for name in files:
            os.replace(partial[name], directory / name)
    finally:
        for path in partial.values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def read_model_archive(path: Path) -> tuple[bytes, Manifest]:
    """The booster bytes and manifest from a model.tar.gz or an unpacked model directory.

    Members are read into memory, never extracted, and only regular files with the two
    expected names are read: absolute paths, ``..``, links and devices are refused.
    """
    if not path.exists():
        raise NotFoundError(f"model {path} does not exist")
    if path.is_dir():
        return _read_pair(
            lambda name: (path / name).read_bytes() if (path / name).is_file() else None, path
        )
    try:
        tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError) as exc:
        # tarfile lists every compression it tried; the gist fits on one line.
        reason = exc.strerror if isinstance(exc, OSError) else "not a gzip or tar archive"
        raise UserError(f"{path} is not a model.tar.gz: {reason}") from None
    try:
        with tar:
            members = _safe_members(tar, path)

            def read(name: str) -> bytes | None:
                member = members.get(name)
                if member is None:
                    return None
                handle = tar.extractfile(member)
                return handle.read() if handle else None

            return _read_pair(read, path)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise UserError(f"{path} is not a readable model.tar.gz (truncated?): {exc}") from None


def _safe_members(tar: tarfile.TarFile, path: Path) -> dict[str, tarfile.TarInfo]:
    """Regular files by name; refuse absolute paths, ``..``, links and devices."""
    members: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        name = member.name.removeprefix("./")
        if name.startswith("/") or ".." in Path(name).parts:
            raise UserError(f"{path} has an unsafe member {member.name!r}; refusing it")
        if not (member.isfile() or member.isdir()):
            raise UserError(f"{path} has a link or special file {member.name!r}; refusing it")
        if member.isfile():
            if member.size > MAX_MEMBER_BYTES:
                raise UserError(f"{path}: member {member.name!r} is implausibly large")
            members[name] = member
    return members


def _read_pair(read, where: Path) -> tuple[bytes, Manifest]:  # type: ignore[no-untyped-def]
    model = read(MODEL_FILE)
    manifest_bytes = read(MANIFEST_FILE)
    if model is None or manifest_bytes is None:
        raise UserError(f"{where} lacks {MODEL_FILE} or {MANIFEST_FILE}")
    try:
        manifest = Manifest.model_validate_json(manifest_bytes)
    except ValidationError as exc:
        raise UserError(f"{where}: manifest.json is not valid: {exc.errors()[0]['msg']}") from None
    return model, manifest


def open_model(ref: str) -> tuple[bytes, Manifest]:
    """The booster bytes and manifest a model reference names.

    REF is a model.tar.gz or an unpacked model directory, local or ``s3://bucket/key``
    (a key ending in .tar.gz, or a prefix holding model.tar.gz). Serving and batch
    scoring load models only through here.
    """
    from stageless.storage import is_s3_url

    if is_s3_url(ref):
        from stageless.storage import read_model

        return read_model(ref)
    return read_model_archive(Path(ref).expanduser())
