"""stageless.artifacts and stageless.manifest: model.tar.gz written atomically, read safely."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from pydantic import ValidationError

from stageless import artifacts
from stageless.artifacts import (
    ARCHIVE_NAME,
    MANIFEST_FILE,
    MODEL_FILE,
    read_model_archive,
    write_model_archive,
    write_model_directory,
)
from stageless.errors import StagelessError, UserError
from stageless.manifest import DataProvenance, Manifest, software_versions, utc_now

FEATURES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    rng = np.random.default_rng(0)
    x = rng.random((64, 3), dtype=np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], dtype=np.float32)).astype(np.float32)
    dtrain = xgb.DMatrix(x, label=y, feature_names=FEATURES)
    return xgb.train({"max_depth": 2, "nthread": 1, "verbosity": 0}, dtrain, num_boost_round=3)


@pytest.fixture(scope="module")
def model_bytes(booster: xgb.Booster) -> bytes:
    return bytes(booster.save_raw("json"))


def provenance(**overrides: Any) -> DataProvenance:
    fields: dict[str, Any] = {
        "source": "duckdb:///tmp/w.duckdb",
        "query": 'SELECT * FROM "main"."t"',
        "snapshot": None,
        "rows_total": 100,
        "rows_dropped_null_target": 4,
        "rows_per_worker": [50, 46],
        "rows_train": 72,
        "rows_validation": 24,
        "shard_strategy": "rowid-range",
        "split": {"fraction": 0.25, "key": None},
    }
    fields.update(overrides)
    return DataProvenance(**fields)


def make_manifest(**overrides: Any) -> Manifest:
    fields: dict[str, Any] = {
        "target": "y",
        "features": FEATURES,
        "feature_types": ["float", "float", "int"],
        "objective": "reg:squarederror",
        "hyperparameters": {"max_depth": 2, "eta": 0.2, "num_round": 3},
        "metrics": {"train": {"rmse": 0.5}, "validation": {"rmse": 0.625}},
        "data": provenance(),
        "workers": 2,
        "versions": software_versions(),
        "created_at": utc_now(),
    }
    fields.update(overrides)
    return Manifest(**fields)


# -- manifest -------------------------------------------------------------------------------


def test_manifest_counts_must_add_up() -> None:
    provenance()  # the default adds up
    with pytest.raises(ValidationError, match="do not add up"):
        provenance(rows_train=73)  # train + validation != total - dropped
    with pytest.raises(ValidationError, match="do not add up"):
        provenance(rows_per_worker=[50, 50])  # workers read more than were used
    with pytest.raises(ValidationError, match="do not add up"):
        provenance(rows_dropped_null_target=0)


def test_manifest_features_and_types_must_match() -> None:
    with pytest.raises(ValidationError, match="differ in length"):
        make_manifest(feature_types=["float"])


def test_manifest_eval_metric() -> None:
    assert make_manifest().eval_metric == "rmse"
    assert make_manifest(metrics={"train": {"rmse": 1.0, "mae": 2.0}}).eval_metric == "mae"
    assert make_manifest(metrics={}).eval_metric is None


def test_utc_now_is_iso_with_z() -> None:
    now = utc_now()
    assert now.endswith("Z")
    assert len(now) == len("2024-01-02T03:04:05Z")


# -- writing and reading --------------------------------------------------------------------


def test_round_trip(tmp_path: Path, model_bytes: bytes, booster: xgb.Booster) -> None:
    manifest = make_manifest()
    path = write_model_archive(tmp_path / "out", model_bytes, manifest)
    assert path == tmp_path / "out" / ARCHIVE_NAME
    model, back = read_model_archive(path)
    assert model == model_bytes
    assert back == manifest
    assert back.data.rows_per_worker == [50, 46]
    loaded = xgb.Booster()
    loaded.load_model(bytearray(model))
    x = np.random.default_rng(1).random((5, 3), dtype=np.float32)
    dm = xgb.DMatrix(x, feature_names=FEATURES)
    np.testing.assert_array_equal(loaded.predict(dm), booster.predict(dm))


def test_archive_has_exactly_the_two_members(tmp_path: Path, model_bytes: bytes) -> None:
    manifest = make_manifest()
    path = write_model_archive(tmp_path, model_bytes, manifest)
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
        assert sorted(m.name for m in members) == [MANIFEST_FILE, MODEL_FILE]
        assert all(m.isfile() for m in members)
        model_handle = tar.extractfile(MODEL_FILE)
        manifest_handle = tar.extractfile(MANIFEST_FILE)
        assert model_handle is not None and manifest_handle is not None
        model = model_handle.read()
        manifest_json = json.loads(manifest_handle.read())
    assert model == model_bytes
    assert manifest_json["target"] == "y"
    assert manifest_json["data"]["rows_total"] == 100
    booster = xgb.Booster()
    booster.load_model(bytearray(model))
    assert booster.feature_names == FEATURES
    assert booster.num_boosted_rounds() == 3


def test_no_partial_file_is_left_and_mode_is_readable(tmp_path: Path, model_bytes: bytes) -> None:
    path = write_model_archive(tmp_path, model_bytes, make_manifest())
    assert sorted(p.name for p in tmp_path.iterdir()) == [ARCHIVE_NAME]
    assert path.stat().st_mode & 0o777 == 0o644


def test_rewriting_replaces_the_archive(tmp_path: Path, model_bytes: bytes) -> None:
    write_model_archive(tmp_path, b"old model", make_manifest(workers=1))
    write_model_archive(tmp_path, model_bytes, make_manifest(workers=3))
    model, manifest = read_model_archive(tmp_path / ARCHIVE_NAME)
    assert model == model_bytes
    assert manifest.workers == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [ARCHIVE_NAME]


def test_a_failed_write_leaves_nothing(
    tmp_path: Path, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(artifacts.os, "replace", broken_replace)
    with pytest.raises(StagelessError, match=r"cannot write .*disk full"):
        write_model_archive(tmp_path, model_bytes, make_manifest())
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_previous_archive(
    tmp_path: Path, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_model_archive(tmp_path, model_bytes, make_manifest(workers=1))
    before = (tmp_path / ARCHIVE_NAME).read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(artifacts.os, "fsync", broken_fsync)
    with pytest.raises(StagelessError, match=r"cannot write .*I/O error"):
        write_model_archive(tmp_path, b"new", make_manifest(workers=5))
    assert sorted(p.name for p in tmp_path.iterdir()) == [ARCHIVE_NAME]
    assert (tmp_path / ARCHIVE_NAME).read_bytes() == before


def test_model_directory_round_trip(tmp_path: Path, model_bytes: bytes) -> None:
    manifest = make_manifest()
    write_model_directory(tmp_path / "model", model_bytes, manifest)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [MANIFEST_FILE, MODEL_FILE]
    model, back = read_model_archive(tmp_path / "model")
    assert model == model_bytes
    assert back == manifest


def test_model_directory_without_manifest_is_refused(tmp_path: Path, model_bytes: bytes) -> None:
    (tmp_path / MODEL_FILE).write_bytes(model_bytes)
    with pytest.raises(UserError, match="lacks"):
        read_model_archive(tmp_path)


# -- hostile or broken archives -------------------------------------------------------------


def manifest_json() -> bytes:
    return make_manifest().model_dump_json().encode()


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, payload = member
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return path


def test_a_hand_made_good_archive_is_read(tmp_path: Path, model_bytes: bytes) -> None:
    # the control for the refusals below: same construction, safe names
    path = make_tar(
        tmp_path / "ok.tar.gz",
        [("./" + MODEL_FILE, model_bytes), (MANIFEST_FILE, manifest_json()), ("notes.txt", b"x")],
    )
    model, manifest = read_model_archive(path)
    assert model == model_bytes
    assert manifest.target == "y"


@pytest.mark.parametrize(
    "name", ["/" + MODEL_FILE, "/etc/passwd", "../x", "../" + MODEL_FILE, "a/../../x"]
)
def test_unsafe_member_names_are_refused(tmp_path: Path, model_bytes: bytes, name: str) -> None:
    path = make_tar(
        tmp_path / "bad.tar.gz",
        [(name, b"evil"), (MODEL_FILE, model_bytes), (MANIFEST_FILE, manifest_json())],
    )
    with pytest.raises(UserError, match="unsafe member"):
        read_model_archive(path)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])
def test_links_and_special_files_are_refused(
    tmp_path: Path, model_bytes: bytes, kind: bytes
) -> None:
    link = tarfile.TarInfo(MODEL_FILE)
    link.type = kind
    link.linkname = "/etc/passwd"
    path = make_tar(tmp_path / "link.tar.gz", [link, (MANIFEST_FILE, manifest_json())])
    with pytest.raises(UserError, match="link or special file"):
        read_model_archive(path)


def test_missing_manifest_is_refused(tmp_path: Path, model_bytes: bytes) -> None:
    path = make_tar(tmp_path / "m.tar.gz", [(MODEL_FILE, model_bytes)])
    with pytest.raises(UserError, match=f"lacks {MODEL_FILE} or {MANIFEST_FILE}"):
        read_model_archive(path)


def test_missing_model_is_refused(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "m.tar.gz", [(MANIFEST_FILE, manifest_json())])
    with pytest.raises(UserError, match="lacks"):
        read_model_archive(path)


def test_manifest_in_a_subdirectory_does_not_count(tmp_path: Path, model_bytes: bytes) -> None:
    path = make_tar(
        tmp_path / "m.tar.gz", [(MODEL_FILE, model_bytes), ("sub/" + MANIFEST_FILE, b"{}")]
    )
    with pytest.raises(UserError, match="lacks"):
        read_model_archive(path)


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"",
        b"[]",
        b'{"target": "y"}',
        json.dumps({**json.loads(manifest_json()), "features": "a"}).encode(),
    ],
)
def test_invalid_manifest_is_refused(tmp_path: Path, model_bytes: bytes, payload: bytes) -> None:
    path = make_tar(tmp_path / "m.tar.gz", [(MODEL_FILE, model_bytes), (MANIFEST_FILE, payload)])
    with pytest.raises(UserError, match=r"manifest\.json is not valid"):
        read_model_archive(path)


def test_manifest_whose_counts_do_not_add_up_is_refused(tmp_path: Path, model_bytes: bytes) -> None:
    data = json.loads(manifest_json())
    data["data"]["rows_train"] += 1
    path = make_tar(
        tmp_path / "m.tar.gz",
        [(MODEL_FILE, model_bytes), (MANIFEST_FILE, json.dumps(data).encode())],
    )
    with pytest.raises(UserError, match="do not add up"):
        read_model_archive(path)


@pytest.mark.parametrize("content", [b"", b"this is not a tar file at all\n" * 100])
def test_a_file_that_is_not_a_tar_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(content)
    with pytest.raises(UserError, match=r"is not a model\.tar\.gz"):
        read_model_archive(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        read_model_archive(tmp_path / "nope.tar.gz")


def test_a_truncated_archive_is_refused(tmp_path: Path) -> None:
    path = write_model_archive(tmp_path, os.urandom(200_000), make_manifest())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError):
        read_model_archive(path)


def test_an_unwritable_output_is_one_clear_error(tmp_path: Path) -> None:
    from stageless.artifacts import write_model_archive
    from stageless.errors import StagelessError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StagelessError, match="cannot write") as raised:
        write_model_archive(blocker / "out", b"{}", make_manifest())
    assert "\n" not in str(raised.value)
