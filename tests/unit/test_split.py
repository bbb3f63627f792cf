"""The client-side train/validation split: MurmurHash3 of each row's float32 values."""

from __future__ import annotations

import mmh3
import numpy as np
import pytest

from stageless.training.split import SPLIT_BUCKETS, murmur3_rows, validation_rows


def reference_hash(features: np.ndarray, label: np.ndarray, row: int) -> int:
    """The library MurmurHash3_x86_32 of one row's bytes, canonicalised as documented."""
    values = np.append(features[row], label[row]).astype("<f4") + np.float32(0.0)
    values[np.isnan(values)] = np.float32(np.nan)
    return mmh3.hash(values.tobytes(), 0, signed=False)


@pytest.fixture
def rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    features = rng.standard_normal((500, 6)).astype(np.float32)
    label = rng.standard_normal(500).astype(np.float32)
    features[3, 2] = np.nan
    features[4, 0] = np.float32(-0.0)
    return features, label


def test_the_vectorised_hash_is_murmur3_of_the_row(rows: tuple[np.ndarray, np.ndarray]) -> None:
    features, label = rows
    hashes = murmur3_rows([*features.T, label])
    assert hashes.dtype == np.uint32
    assert [int(h) for h in hashes] == [reference_hash(features, label, i) for i in range(500)]


def test_negative_zero_and_every_nan_hash_like_their_canonical_value() -> None:
    label = np.zeros(3, dtype=np.float32)
    features = np.zeros((3, 2), dtype=np.float32)
    features[1, 0] = np.float32(-0.0)
    features[2, 0] = np.frombuffer(np.uint32(0x7FC00001).tobytes(), np.float32)[0]  # odd NaN
    hashes = murmur3_rows([*features.T, label])
    assert hashes[0] == hashes[1]
    canonical_nan = features.copy()
    canonical_nan[2, 0] = np.nan
    assert hashes[2] == murmur3_rows([*canonical_nan.T, label])[2]
    assert hashes[0] != hashes[2]


def test_a_rows_side_does_not_depend_on_its_batch(rows: tuple[np.ndarray, np.ndarray]) -> None:
    features, label = rows
    whole = validation_rows(list(features.T), label, 0.25)
    pieces = np.concatenate(
        [
            validation_rows(list(features[i : i + 7].T), label[i : i + 7], 0.25)
            for i in range(0, 500, 7)
        ]
    )
    assert whole.tolist() == pieces.tolist()


def test_the_fraction_validates_and_zero_validates_nothing() -> None:
    rng = np.random.default_rng(1)
    features = list(rng.integers(0, 1000, (3, 200_000)).astype(np.float32))
    label = rng.integers(0, 10, 200_000).astype(np.float32)
    assert validation_rows(features, label, 0.25).mean() == pytest.approx(0.25, abs=0.005)
    assert validation_rows(features, label, 0.1).mean() == pytest.approx(0.1, abs=0.005)
    assert not validation_rows(features, label, 0.0).any()
    # A row validates exactly when its bucket is below the threshold.
    buckets = murmur3_rows([*features, label]) % SPLIT_BUCKETS
    assert (validation_rows(features, label, 0.1) == (buckets < 100_000)).all()
