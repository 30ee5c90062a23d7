"""The GPU path, where a CUDA device is present (skipped elsewhere): nets learn on the GPU,
packed the same as one at a time, the same seed gives the same nets, and the commands run with
`--device cuda` end to end, their model file answering alike on the CPU."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from data import Splits
from models import Config, Run, resolve_device, train_runs
from tests.helpers import TINY, accuracy_line, run_cli
from tests.models.test_packed import CASES, assert_same
from tests.models.test_training import fit as fit_on

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")

CUDA = torch.device("cuda")


def fit(config: Config, splits: Splits, seed: int = 0):
    return fit_on(config, splits, seed, device=CUDA)


@pytest.fixture
def fp32() -> Iterator[None]:
    """Full float32 arithmetic: cuDNN's convolutions otherwise round their inputs to TF32 (10
    mantissa bits), which differs between a packed net's grouped convolutions and one net's."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_auto_and_cuda_name_the_gpu() -> None:
    assert resolve_device("auto").type == resolve_device("cuda").type == "cuda"


def test_a_small_siamese_learns_the_task_on_the_gpu(splits: Splits) -> None:
    result = fit(Config(nb_filters=8, hidden_units=64, epochs=4, augment=False), splits)
    assert result.history[-1].accuracy["val"] > 0.85  # as on the CPU (test_training)
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert {p.device.type for net in result.nets for p in net.parameters()} == {"cuda"}


def test_same_seed_same_nets_to_float_rounding_on_the_gpu(splits: Splits) -> None:
    # Not bit for bit as on the CPU: cuDNN's kernels may sum in another order from one run to
    # the next (seen on an H200: an epoch's loss 1.2345269918 against 1.2345268726).
    # Augmentation and dropout draw from generators on the GPU.
    config = Config(nb_filters=4, hidden_units=32, epochs=2, augment=True, dropout=0.2)
    a, b, c = fit(config, splits, 1), fit(config, splits, 1), fit(config, splits, 2)
    losses = [[h.train_loss for h in r.history] for r in (a, b, c)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert losses[0] != pytest.approx(losses[2], rel=1e-3)
    for ha, hb in zip(a.history, b.history, strict=True):
        assert abs(ha.accuracy["val"] - hb.accuracy["val"]) <= 0.002  # 2 pairs in 1000


@pytest.mark.parametrize("case", CASES)
@pytest.mark.usefixtures("fp32")
def test_packed_runs_train_the_same_nets_as_one_by_one_on_the_gpu(
    case: str, runs: list[Run]
) -> None:
    config = replace(CASES[case], dropout=0.0, ensemble=2)
    packed = train_runs(config, runs, device=CUDA, pack=True, all_pairs=True, first_net=True)
    alone = train_runs(config, runs, device=CUDA, pack=False, all_pairs=True, first_net=True)
    # An MLP packed multiplies batched matrices: seen on an H200, 2 of its 100 validation
    # pairs flipped after 3 epochs, against at most 1 on the CPU.
    assert_same(packed, alone, flips=0.021)
    assert_same([p.first_net for p in packed], [a.first_net for a in alone], flips=0.021)


def test_the_commands_run_on_the_gpu_and_the_model_file_answers_on_the_cpu(
    tmp_path: Path,
) -> None:
    r = run_cli("search.run", "--trials", "3", "--workers", "2", "--study", "gpu", *TINY,
                "--pruner", "none", "--device", "cuda", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_cli("search.final_eval", "--study", "gpu", "--rounds", "2", "--no-ablation",
                "--ensemble", "2", "--device", "cuda", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "studies/gpu/final_eval.json").read_text())
    round0 = next(x for x in result["rounds"] if x["variant"] == "selection" and x["round"] == 0)
    expected = round(result["test_pairs"] * round0["test_accuracy"])
    model = result["model"]["path"]
    on = {}
    for device in ("cuda", "cpu"):
        r = run_cli("search.predict", "--model", model, "--dataset", "mnist5k",
                    "--device", device, cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr
        on[device] = accuracy_line(r.stdout)
    assert on["cuda"] == (expected, result["test_pairs"])  # exactly, on the same device
    # The CPU sums in another order: a pair the nets score at a near tie may flip.
    assert abs(on["cpu"][0] - expected) <= 2, (on, expected)
