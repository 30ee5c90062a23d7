"""The course's protocol (`--dataset mnist`) on files of MNIST's sizes: its default validation
set, kept apart from the training and test images, and a study run end to end on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from data import load_source, make_splits
from data.splits import MAX_DEFAULT_VAL_PAIRS
from search.study.racing import RACE_SEED
from tests.helpers import load_study, run_cli, write_mnist


@pytest.fixture(scope="module")
def mnist_sized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mnist")
    write_mnist(folder, gz=False, n_train=60_000, n_test=10_000)
    return folder


def rows(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images.reshape(-1, 14, 14)}


def test_validation_defaults_to_1000_pairs_of_images_apart_from_training_and_test(
    mnist_sized: Path,
) -> None:
    source = load_source("mnist", mnist_sized)
    splits = make_splits(source, seed=3, n_train=1000, n_test=1000)
    assert len(splits.val) == MAX_DEFAULT_VAL_PAIRS == 1000  # MNIST-train has 29,000 left
    assert splits.test is not None
    train_ids = set(splits.train.image_ids.flatten().tolist())
    val_ids = set(splits.val.image_ids.flatten().tolist())
    assert len(train_ids) == 2000 and len(val_ids) == 2000 and not train_ids & val_ids
    # by content as well: no validation image is a training or a test image
    val = rows(splits.val.input)
    assert len(val) == 2000
    assert not val & rows(splits.train.input) and not val & rows(splits.test.input)
    assert torch.equal(splits.test.input, source.test_images[splits.test.image_ids])
    # the embedded source keeps what its train pool has left
    assert len(make_splits(load_source("mnist5k"), seed=3).val) == 500


def test_a_study_on_mnist_sized_files_runs_end_to_end(mnist_sized: Path, tmp_path: Path) -> None:
    r = run_cli("search.run", "--dataset", "mnist", "--data-dir", str(mnist_sized),
                "--trials", "3", "--workers", "1", "--epochs", "2", "--train-pairs", "100",
                "--finalists", "1", "--race-seeds", "1", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    study = load_study(f"sqlite:///{tmp_path}/studies/digit-pairs.db", "digit-pairs")
    assert study.user_attrs["val_pairs"] == 1000 and study.user_attrs["dataset"] == "mnist"
    done = study.get_trials(states=(TrialState.COMPLETE,))
    search = {str(t.params): t for t in done if RACE_SEED not in t.user_attrs}
    race = [t for t in done if RACE_SEED in t.user_attrs]
    assert len(search) == 3 and race
    for t in race:  # a race run is scored as the search scored the same configuration
        assert t.user_attrs["value_over"] == search[str(t.params)].user_attrs["value_over"]
    for t in done:
        assert t.value == t.intermediate_values[2]
    r = run_cli("search.final_eval", "--rounds", "1", "--no-ablation", "--ensemble", "1",
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "studies" / "digit-pairs" / "final_eval.json").read_text())
    assert result["dataset"] == "mnist" and result["test_pairs"] == 1000
