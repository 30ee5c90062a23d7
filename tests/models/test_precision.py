"""Training in bf16 autocast: the choice resolved per device, the comparison head kept in fp32
(where bf16 rounding made a net diverge), and a study that records and keeps its precision."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch

from data import load_source, make_splits
from models import Config, load_model, train
from models.nets import digits_comparison
from models.precision import fast_bf16, resolve_precision
from tests.helpers import TINY, assert_one_line_error, run_cli

CPU = torch.device("cpu")


def test_auto_is_bf16_only_where_the_hardware_runs_it() -> None:
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    assert resolve_precision("auto", CPU) == ("bf16" if fast_bf16(CPU) else "fp32")
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp16", CPU)


def test_the_comparison_of_confident_digits_stays_finite_under_bf16() -> None:
    # Digits read with near certainty: P(first <= second) rounds to 1 in bf16, and the log of
    # P(first > second) would be -inf; the head computes in fp32 whatever the autocast.
    logits = torch.full((4, 2, 10), -30.0)
    logits[:, 0, 2], logits[:, 1, 7] = 30.0, 30.0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = digits_comparison(logits.bfloat16())
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_a_net_trains_in_bf16_and_its_weights_stay_fp32() -> None:
    splits = make_splits(load_source("mnist5k"), seed=0, n_train=200, n_val=100)
    result = train(Config(epochs=2), splits.train, {"val": splits.val}, mean=splits.mean,
                   std=splits.std, seed=0, device=CPU, precision="bf16")  # fmt: skip
    assert all(torch.isfinite(torch.tensor(h.train_loss)) for h in result.history)
    assert result.history[-1].accuracy["val"] > 0.6  # learning, not answering one way
    assert {p.dtype for p in result.nets[0].parameters()} == {torch.float32}


def test_a_study_records_its_precision_and_every_command_keeps_it(tmp_path: Path) -> None:
    args = ["--study", "b", "--workers", "1", "--trials", "2", *TINY]
    r = run_cli("search.run", *args, "--precision", "bf16", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="b", storage=f"sqlite:///{tmp_path}/studies/b.db")
    assert study.user_attrs["precision"] == "bf16"
    assert {t.user_attrs["precision"] for t in study.trials if t.state.is_finished()} == {"bf16"}
    r = run_cli("search.run", *args, "--precision", "fp32", cwd=tmp_path)
    assert_one_line_error(r, "was created with --precision bf16, not fp32")
    r = run_cli("search.final_eval", "--study", "b", "--rounds", "1", "--no-ablation",
                "--ensemble", "1", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "studies" / "b" / "final_eval.json").read_text())
    assert result["precision"] == "bf16"  # the study's, by default
    model = load_model(tmp_path / "studies" / "b" / "model.safetensors")
    assert model.info["precision"] == "bf16"
    assert {p.dtype for p in model.model.parameters()} == {torch.float32}
