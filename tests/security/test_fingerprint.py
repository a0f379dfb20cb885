"""Data fingerprints cover files inside the lab, data/ and `data:` only: a param naming a system file
does not get that file's sha256, size and mtime into run.json."""

from __future__ import annotations

import pytest

from assay.errors import ConfigError
from assay.experiment import load_experiment
from assay.provenance import data_files
from assay.runner import RunSpec, run_experiment

SCRIPT = "print('val_bpb: 1.0')\n"


@pytest.fixture
def outside(tmp_path):
    """A file outside the lab, as /etc/passwd would be."""
    path = tmp_path / "system" / "passwd"
    path.parent.mkdir()
    path.write_text("root:x:0:0\n")
    return path


def _data(lab, exp, *overrides: str) -> dict:
    [res] = run_experiment(lab, RunSpec(exp.name, "d", list(overrides)))
    assert res.status == "ok", res.record.get("reason")
    assert "provenance capture failed" not in str(res.record.get("warnings"))
    return res.record.get("data", {})  # absent when no file was fingerprinted


def test_a_param_naming_a_file_outside_the_lab_is_not_fingerprinted(lab, make_experiment, outside):
    exp = make_experiment(SCRIPT, config={"seed": 0, "data": "x"})
    link = exp.path / "innocent.txt"  # a link inside the lab to the same file: resolved, still outside
    link.symlink_to(outside)
    data = _data(lab, exp, f"data={outside}", "+other=innocent.txt", "+up=../../../system/passwd")
    assert data == {}


def test_files_inside_the_lab_and_under_data_are_still_fingerprinted(lab, make_experiment):
    exp = make_experiment(SCRIPT, config={"seed": 0, "train": "x", "vocab": "x"})
    (exp.path / "data").mkdir()
    (exp.path / "data" / "train.csv").write_text("a,b\n1,2\n")
    (lab.root / "shared.txt").write_text("vocab\n")
    data = _data(lab, exp, "train=data/train.csv", f"vocab={lab.root / 'shared.txt'}")
    assert data["data/train.csv"]["named_by"] == "param train"
    assert data[str((lab.root / "shared.txt").resolve())]["named_by"] == "param vocab"


def test_files_listed_under_data_are_fingerprinted_even_outside_the_lab(lab, make_experiment, outside, tmp_path):
    datasets = tmp_path / "datasets"
    (datasets / "cifar").mkdir(parents=True)
    (datasets / "cifar" / "train.bin").write_bytes(b"\x00" * 64)
    (datasets / "cifar" / "test.bin").write_bytes(b"\x01" * 8)
    exp = make_experiment(SCRIPT, config={"seed": 0, "train": "x", "sys": "x"},
                          data=[str(datasets), "../../../system/passwd"])
    assert exp.data == (str(datasets), "../../../system/passwd")
    data = _data(lab, exp, f"train={datasets / 'cifar' / 'train.bin'}", f"sys={outside}")
    train = data[str((datasets / "cifar" / "train.bin").resolve())]
    assert train["named_by"] == "param train" and train["bytes"] == 64
    assert data[str((datasets / "cifar" / "test.bin").resolve())]["named_by"] == "data:"
    assert data[str(outside.resolve())]["named_by"] == "param sys"


def test_a_data_folder_linked_outside_the_lab_is_still_the_experiments_data(lab, make_experiment, tmp_path, outside):
    store = tmp_path / "big-disk"
    store.mkdir()
    (store / "train.csv").write_text("1\n")
    (store / "escape").symlink_to(outside)  # a link out of the data folder itself is not followed
    exp = make_experiment(SCRIPT)
    (exp.path / "data").symlink_to(store, target_is_directory=True)
    assert set(data_files(exp.path, {}, lab_root=lab.root).values()) == {"data/"}
    assert list(data_files(exp.path, {}, lab_root=lab.root)) == [(store / "train.csv").resolve()]


@pytest.mark.parametrize("value", ["{a: 1}", "[1, 2]", "['']"])
def test_a_data_entry_that_is_not_paths_is_a_config_error_naming_the_file(lab, make_experiment, value):
    exp = make_experiment(SCRIPT)
    exp.file.write_text(exp.file.read_text() + f"data: {value}\n")
    with pytest.raises(ConfigError, match=r"`data:` in .*experiment.yaml must be a path or a list of paths"):
        load_experiment(lab, "exp")
