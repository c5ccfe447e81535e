"""UCI HAPT loader: a small written experiment and the real data."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from fedhar.data.hapt import load_hapt
from fedhar.data.paths import DatasetMissingError
from fedhar.data.registry import load_dataset
from fedhar.data.types import HarDataset


@pytest.fixture()
def small(tmp_path: Path, tmp_cache: Path) -> Path:
    raw = tmp_path / "uci_har" / "RawData"
    raw.mkdir(parents=True)
    rows = [f"{0.01 * i:.4f} {-0.02 * i:.4f} {1.0:.4f}" for i in range(200)]
    rows[59] = "0.5 oops 1.0"
    (raw / "acc_exp01_user07.txt.gz").write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    gyro = "\n".join(f"{0.1:.1f} {0.2:.1f} {0.3:.1f}" for _ in range(200)) + "\n"
    (raw / "gyro_exp01_user07.txt").write_text(gyro)
    (raw / "labels.txt").write_text(
        "1 7 1 11 100\n1 7 7 101 120\n1 7 4 121 180\n1 7 5 190 250\n1 7 99 1 2\n"
    )
    return tmp_path


def test_small_experiment_segments_units_and_exclusions(small: Path) -> None:
    ds = load_hapt(small, channels="acc+gyro", acc_units="m/s2")
    assert ds.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert ds.users == ["7"] and ds.fs == 50.0
    # label row 1 (rows 11-100) is split around malformed row 60; transitions are excluded
    walking = [s for s in ds.segments if ds.classes[s.label] == "walking"]
    assert [s.signal.shape[0] for s in walking] == [49, 40]
    assert walking[0].source.endswith(":11-59") and walking[1].source.endswith(":61-100")
    np.testing.assert_allclose(
        walking[0].signal[0, :3], [0.1 * 9.80665, -0.2 * 9.80665, 9.80665], rtol=1e-5
    )
    np.testing.assert_allclose(walking[0].signal[0, 3:], [0.1, 0.2, 0.3], rtol=1e-6)
    sitting = [s for s in ds.segments if ds.classes[s.label] == "sitting"][0]
    assert sitting.signal.shape[0] == 60
    np.testing.assert_allclose(np.diff(sitting.t), 0.02)
    issues = [(Path(i.file).name, i.line) for i in ds.report.issues]
    assert ("acc_exp01_user07.txt.gz", 60) in issues  # malformed value row
    assert ("labels.txt", 4) in issues  # end 250 past the 200 rows
    assert ("labels.txt", 5) in issues  # activity 99
    assert ds.report.records_ok == 89 + 60


def test_transitions_and_resampling_on_request(small: Path) -> None:
    ds = load_hapt(small, include_transitions=True, target_fs=20.0)
    assert len(ds.classes) == 12 and ds.fs == 20.0
    assert {ds.classes[s.label] for s in ds.segments} == {"walking", "stand_to_sit", "sitting"}
    assert all(np.allclose(np.diff(s.t), 0.05) for s in ds.segments)


def test_channels_are_validated(small: Path) -> None:
    with pytest.raises(ValueError, match="channels must be one of"):
        load_hapt(small, channels="gyro")
    with pytest.raises(ValueError, match="channels must be 'acc'"):
        load_dataset("wisdm2019", small, channels="acc+gyro")


def test_missing_raw_data_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError) as info:
        load_dataset("hapt", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "uci_har" / "RawData") in message
    assert "labels.txt" in message and "acc_expXX_userYY.txt" in message and "HAPT" in message


@pytest.mark.realdata
def test_real_users_samples_and_segments(hapt_acc: HarDataset) -> None:
    ds = hapt_acc
    assert ds.users == [str(u) for u in range(1, 31)]
    assert ds.classes == [
        "walking", "walking_upstairs", "walking_downstairs", "sitting", "standing", "laying"
    ]  # fmt: skip
    assert ds.report.records_ok == 748_406 and ds.report.records_skipped == 0
    assert sum(s.signal.shape[0] for s in ds.segments) == 748_406
    assert "1214 label rows" in ds.report.notes[0]
    assert "67208 rows of unselected classes and 307158 unlabelled" in ds.report.notes[0]
    per_class = np.bincount([s.label for s in ds.segments], minlength=6)
    assert per_class.tolist() == [127, 183, 186, 120, 120, 120]
    gravity = np.concatenate([s.signal for s in ds.segments if s.label == 5])
    assert 0.9 < float(np.median(np.linalg.norm(gravity, axis=1))) < 1.1  # g units


@pytest.mark.realdata
def test_real_transitions_with_gyro_for_two_users(data_dir: Path) -> None:
    ds = load_hapt(data_dir, channels="acc+gyro", include_transitions=True, users=["1", "10"])
    assert ds.users == ["1", "10"] and len(ds.channels) == 6
    assert len(ds.classes) == 12
    assert any(s.label >= 6 for s in ds.segments)
