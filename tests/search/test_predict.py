"""The model file of a real final evaluation, loaded in fresh processes: search.predict and
models.load_model give back what the evaluation measured, and refuse what is not a model."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from data import load_source
from data.errors import DataError
from data.idx import IMAGES_MAGIC, read_idx
from data.images import read_digit
from data.sources import EMBEDDED, downsample
from models import ModelFileError, load_model
from search.answers import COLUMNS
from tests.helpers import accuracy_line, assert_one_line_error, run_cli

MODEL = Path("studies/trained/model.safetensors")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default configuration trained for a few seconds (6 epochs, 1000 pairs) and saved by
    the real final evaluation: good enough to read MNIST digits."""
    root = tmp_path_factory.mktemp("trained")
    r = run_cli("search.run", "--trials", "3", "--workers", "1", "--study", "trained",
                "--epochs", "6", "--train-pairs", "1000", "--val-pairs", "50",
                "--finalists", "0", "--pruner", "none", cwd=root)  # fmt: skip
    assert r.returncode == 0, r.stderr
    # trial 2 is the siamese default queued first: the default configuration
    r = run_cli("search.final_eval", "--study", "trained", "--trial", "2", "--rounds", "2",
                "--no-ablation", "--ensemble", "1", cwd=root)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return root


def test_the_model_gives_the_round_0_test_accuracy_in_a_fresh_process(trained: Path) -> None:
    result = json.loads((trained / "studies" / "trained" / "final_eval.json").read_text())
    round0 = next(r for r in result["rounds"] if r["variant"] == "selection" and r["round"] == 0)
    assert result["model"]["seed"] == round0["seed"] == result["round_seeds"][0]
    r = run_cli("search.predict", "--model", str(MODEL), "--dataset", "mnist5k", cwd=trained)
    assert r.returncode == 0, r.stderr
    right, n = accuracy_line(r.stdout)
    assert n == result["test_pairs"] == 1000
    assert right == round(1000 * round0["test_accuracy"])  # exactly, on the same pairs
    assert "the model file records" in r.stdout

    model = load_model(trained / MODEL)
    assert not model.model.training
    assert model.config.to_dict() == result["config"]
    assert model.info["test_accuracy"] == round0["test_accuracy"]
    assert model.info["trial"] == 2 and model.info["dataset"] == "mnist5k"
    assert {"torch", "optuna", "python", "cpu"} <= set(model.info["versions"])


def test_another_round_draws_other_pairs(trained: Path) -> None:
    r0 = run_cli("search.predict", "--model", str(MODEL), "--dataset", "mnist5k",
                 "--pairs", "300", cwd=trained)  # fmt: skip
    r1 = run_cli("search.predict", "--model", str(MODEL), "--dataset", "mnist5k",
                 "--pairs", "300", "--round", "1", cwd=trained)  # fmt: skip
    assert r0.returncode == r1.returncode == 0, (r0.stderr, r1.stderr)
    assert "round 1 of a final evaluation" in r1.stdout
    assert accuracy_line(r0.stdout)[1] == accuracy_line(r1.stdout)[1] == 300
    assert "the model file records" not in r0.stdout  # 300 pairs are not the recorded 1000


def raw_test_images() -> list[tuple[np.ndarray, int]]:
    """mnist5k's test-pool images at their original 28x28, one per digit: the 14x14 images
    of the test pool found among the embedded IDX file's downsampled images."""
    source = load_source("mnist5k")
    raw = read_idx(EMBEDDED / "images-idx3-ubyte.gz", magic=IMAGES_MAGIC)
    pooled = downsample(raw)
    out = []
    for digit in range(10):
        j = int((source.test_labels == digit).nonzero()[3])
        i = int((pooled == source.test_images[j]).flatten(1).all(1).nonzero()[0])
        out.append((raw[i].numpy(), digit))
    return out


def test_two_image_files_are_read_as_mnist_digits(trained: Path, tmp_path: Path) -> None:
    images = raw_test_images()
    model = load_model(trained / MODEL)
    protocol = torch.stack([downsample(torch.from_numpy(a)[None])[0] for a, _ in images])
    read = model.predict(torch.stack([protocol, protocol], 1)).digits[:, 0]
    readable = [k for k, (_, digit) in enumerate(images) if int(read[k]) == digit]
    assert len(readable) >= 8, read  # the model reads the protocol's own tensors
    for k in readable:
        pixels = images[k][0]
        # white on black at MNIST's size, and black on white, five times larger, as a JPEG
        Image.fromarray(pixels).save(tmp_path / f"{k}.png")
        big = Image.fromarray(255 - pixels).resize((140, 140), Image.BICUBIC)
        big.convert("RGB").save(tmp_path / f"{k}.jpg", quality=90)
    first, second = readable[0], readable[-1]
    for a, b in ((f"{first}.png", f"{second}.jpg"), (f"{second}.jpg", f"{first}.png")):
        r = run_cli("search.predict", "--model", str(trained / MODEL), "--images",
                    str(tmp_path / a), str(tmp_path / b), cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr
        da, db = images[int(a.split(".")[0])][1], images[int(b.split(".")[0])][1]
        row = r.stdout.strip().splitlines()[-1]
        assert f"{da} {'<=' if da <= db else '>'} {db}" in row, r.stdout
        assert ("yes" if da <= db else "no") in row.split()
    for k in readable:
        for name in (f"{k}.png", f"{k}.jpg"):
            x = read_digit(tmp_path / name)
            digits = model.predict(torch.stack([x, x])[None]).digits[0]
            assert digits.tolist() == [images[k][1]] * 2, name


def test_a_pair_file_gives_one_row_per_pair(trained: Path, tmp_path: Path) -> None:
    pairs = load_source("mnist5k").test_images[:10].view(5, 2, 14, 14)
    np.save(tmp_path / "pairs.npy", pairs.numpy())
    torch.save(pairs, tmp_path / "pairs.pt")
    outputs = []
    for name in ("pairs.npy", "pairs.pt"):
        r = run_cli("search.predict", "--model", str(trained / MODEL), "--pairs-file",
                    str(tmp_path / name), cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr
        table = r.stdout.strip().splitlines()[-5:]
        assert [line.split()[:3] for line in table] == [
            [str(tmp_path / f"{name}[{i},0]"), "vs", str(tmp_path / f"{name}[{i},1]")]
            for i in range(5)
        ]
        outputs.append([line.split(None, 3)[3] for line in table])
    assert outputs[0] == outputs[1]


def tampered(src: Path, dst: Path, **header: str) -> Path:
    with safe_open(str(src), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        metadata = f.metadata() | header
    save_file(tensors, str(dst), metadata=metadata)
    return dst


class RunsCode:
    """Unpickling this runs a command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def test_what_is_not_a_whole_model_is_refused(trained: Path, tmp_path: Path) -> None:
    good = trained / MODEL
    data = good.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    marker = tmp_path / "ran"
    (tmp_path / "pickle.safetensors").write_bytes(pickle.dumps(RunsCode(marker)))
    torch.save({"weights": torch.zeros(3)}, tmp_path / "torch.safetensors")
    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    config = load_model(good).config.to_dict()
    wider = json.dumps(config | {"hidden_units": config["hidden_units"] + 1})
    cases = {
        "cut.safetensors": "not a readable model file",
        "pickle.safetensors": "not a readable model file",
        "torch.safetensors": "not a readable model file",
        "other.safetensors": "not a digit-pair model",
        "newer.safetensors": "newer than this release reads",
        "wider.safetensors": "do not fit its configuration",
        "missing.safetensors": "no such file",
        ".": "not a regular file",
    }
    tampered(good, tmp_path / "newer.safetensors", format_version="2")
    tampered(good, tmp_path / "wider.safetensors", config=wider)
    for name, why in cases.items():
        with pytest.raises(ModelFileError, match=why) as e:
            load_model(tmp_path / name)
        assert str(tmp_path / name) in str(e.value)
        if name in ("pickle.safetensors", "other.safetensors", "wider.safetensors", "."):
            # the command reports the same refusal in one line (a start-up each: four suffice)
            r = run_cli("search.predict", "--model", str(tmp_path / name), "--dataset",
                        "mnist5k", cwd=tmp_path)  # fmt: skip
            assert_one_line_error(r, why)
    assert not marker.exists()  # nothing was unpickled


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("no-image", "no such image file"),
        ("text-as-png", "is not a PNG or JPEG image"),
        ("blank", "no digit found"),
        ("pairs-shape", "not N x 2 x 14 x 14"),
        ("pairs-pickle", "cannot be read as a pair file"),
        ("pairs-pickle-pt", "holds Python objects other than tensors"),  # no torch warning
        ("pairs-suffix", "a pair file ends in .npy or .pt"),
        ("pairs-nan", "NaN or infinite"),
    ],
)
def test_bad_input_to_predict_is_one_line(
    trained: Path, tmp_path: Path, case: str, why: str
) -> None:
    digit = tmp_path / "digit.png"
    Image.fromarray(raw_test_images()[0][0]).save(digit)
    args = ["--images", str(digit), str(tmp_path / "none.png")]
    if case == "text-as-png":
        (tmp_path / "text.png").write_text("not an image\n")
        args = ["--images", str(digit), str(tmp_path / "text.png")]
    elif case == "blank":
        Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
        args = ["--images", str(tmp_path / "blank.png"), str(digit)]
    elif case == "pairs-shape":
        np.save(tmp_path / "p.npy", np.zeros((3, 14, 14), dtype=np.float32))
        args = ["--pairs-file", str(tmp_path / "p.npy")]
    elif case == "pairs-pickle":
        np.save(tmp_path / "p.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        args = ["--pairs-file", str(tmp_path / "p.npy")]
    elif case == "pairs-pickle-pt":
        (tmp_path / "p.pt").write_bytes(pickle.dumps({"pairs": [object()]}, protocol=4))
        args = ["--pairs-file", str(tmp_path / "p.pt")]
    elif case == "pairs-suffix":
        (tmp_path / "p.csv").write_text("1,2\n")
        args = ["--pairs-file", str(tmp_path / "p.csv")]
    elif case == "pairs-nan":
        np.save(tmp_path / "p.npy", np.full((1, 2, 14, 14), np.nan, dtype=np.float32))
        args = ["--pairs-file", str(tmp_path / "p.npy")]
    r = run_cli("search.predict", "--model", str(trained / MODEL), *args, cwd=tmp_path)
    assert_one_line_error(r, why)


def test_predict_needs_one_kind_of_input(tmp_path: Path) -> None:
    r = run_cli("search.predict", cwd=tmp_path)
    assert_one_line_error(
        r, "one of the arguments --images --pairs-csv --pairs-file --dataset is required"
    )
    r = run_cli("search.predict", "--dataset", "mnist5k", cwd=tmp_path)
    assert_one_line_error(r, "studies/digit-pairs/model.safetensors: no such file")


def test_a_tampered_or_unusable_model_file_is_refused_in_one_line(
    trained: Path, tmp_path: Path
) -> None:
    good = trained / MODEL
    config = load_model(good).config.to_dict()
    with safe_open(str(good), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        header = f.metadata()
    nested = "[" * 100_000 + "]" * 100_000
    cases = {
        "dropout-nan": ({"config": json.dumps(config | {"dropout": float("nan")})}, "dropout"),
        "superscript": ({"format_version": "²"}, "is not a number"),
        "nines": ({"format_version": "9" * 5000}, "is not a number"),
        "nested": ({"info": nested}, "no readable 'info'"),
        "huge-filters": (
            {"config": json.dumps(config | {"nb_filters": 10**400})},
            "nb_filters is out of range",
        ),
        "flat-normalization": (
            {"normalization": json.dumps({"mean": 0.0, "std": 1e300})},
            "not one of 0-255 grey levels",
        ),
    }
    for name, (change, _) in cases.items():
        tampered(good, tmp_path / f"{name}.safetensors", **change)
    nan = {k: t.clone() for k, t in tensors.items()}
    first = next(k for k, t in nan.items() if t.is_floating_point())
    nan[first].view(-1)[0] = float("nan")
    save_file(nan, str(tmp_path / "nan-weights.safetensors"), metadata=header)
    cases["nan-weights"] = ({}, "weights are not all finite")
    for name, (_, why) in cases.items():
        with pytest.raises(ModelFileError, match=why):
            load_model(tmp_path / f"{name}.safetensors")
    r = run_cli("search.predict", "--model", str(tmp_path / "nested.safetensors"), "--dataset",
                "mnist5k", cwd=tmp_path)  # fmt: skip
    assert_one_line_error(r, "no readable 'info'")


def test_a_huge_png_is_named_too_large(trained: Path, tmp_path: Path) -> None:
    # 20000 x 20000 one-bit pixels compress to a small file; Pillow's own bomb limit refuses
    # it before its size is read here, and the line says so.
    Image.new("1", (20000, 20000)).save(tmp_path / "huge.png")
    assert (tmp_path / "huge.png").stat().st_size < 5_000_000
    with pytest.raises(DataError, match="too large for a digit"):
        read_digit(tmp_path / "huge.png")


def digit_files(folder: Path) -> list[tuple[str, int]]:
    """The ten test digits as PNG files in `folder`: (file name, digit)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for pixels, digit in raw_test_images():
        Image.fromarray(pixels).save(folder / f"d{digit}.png")
        out.append((f"d{digit}.png", digit))
    return out


def test_many_pairs_of_image_files_answer_a_program(trained: Path, tmp_path: Path) -> None:
    files = digit_files(tmp_path / "scans")
    # Each image in several pairs: 30 pairs of the ten digits, as a list and as a CSV.
    chosen = [(files[i % 10], files[(3 * i + 1) % 10]) for i in range(30)]
    images = [str(tmp_path / "scans" / f) for pair in chosen for f, _ in pair]
    csv_rows = "".join(f"scans/{a},scans/{b},extra\n" for (a, _), (b, _) in chosen)
    (tmp_path / "with-header.csv").write_text("first,second,note\n" + csv_rows)
    (tmp_path / "bare.csv").write_text(csv_rows)
    model = str(trained / MODEL)
    answers = {}
    ways = {"list": ["--images", *images], "header": ["--pairs-csv", "with-header.csv"],
            "bare": ["--pairs-csv", "bare.csv"]}  # fmt: skip
    for name, args in ways.items():
        for suffix in (".csv", ".json"):
            out = tmp_path / f"answers-{name}{suffix}"
            r = run_cli("search.predict", "--model", model, *args, "--out", str(out),
                        cwd=tmp_path)  # fmt: skip
            assert r.returncode == 0, r.stderr
            assert "30 pairs: first <= second in" in r.stdout  # many: summarized, not a table
            assert f"wrote 30 answers to {out}" in r.stdout
            if suffix == ".json":
                answers[name] = json.loads(out.read_text())
            else:
                with open(out, newline="") as f:
                    rows = list(csv.DictReader(f))
                assert list(rows[0]) == list(COLUMNS) and len(rows) == 30
                assert {r["first_le_second"] for r in rows} <= {"true", "false"}
    listed, header, bare = answers["list"], answers["header"], answers["bare"]
    assert [r["first"] for r in header] == [f"scans/{a}" for (a, _), _ in chosen]
    strip = [{k: v for k, v in r.items() if k not in ("first", "second")} for r in listed]
    assert strip == [{k: v for k, v in r.items() if k not in ("first", "second")} for r in header]
    assert header == bare
    right = 0
    for row, ((_, da), (_, db)) in zip(header, chosen, strict=True):
        assert row["first_le_second"] == (row["p_first_le_second"] > 0.5)
        assert 0 <= row["p_first_digit"] <= 1 and 0 <= row["p_second_digit"] <= 1
        right += row["first_le_second"] == (da <= db)
    assert right >= 24, right  # the model reads most of these digits


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("odd", "3 images is an odd number"),
        ("empty csv", "is empty"),
        ("one column", "row 2 of pairs.csv has one column"),
        ("missing image", "row 3 of pairs.csv: scans/gone.png: no such image file"),
        ("not an image", "row 2 of pairs.csv: scans/notes.png is not a PNG or JPEG image"),
        ("out over the model", "is an input of this command"),
        ("out over an image", "is an image of row 2 of pairs.csv"),
        ("out of another kind", "name a .csv or a .json file"),
    ],
)
def test_bad_pairs_of_image_files_are_one_line_and_nothing_is_written(
    trained: Path, tmp_path: Path, case: str, needle: str
) -> None:
    files = digit_files(tmp_path / "scans")
    (tmp_path / "scans" / "notes.png").write_text("a note, not a picture\n")
    rows = ["first,second", "scans/d1.png,scans/d2.png", "scans/d3.png,scans/d4.png"]
    out = tmp_path / "answers.csv"
    args = ["--pairs-csv", "pairs.csv", "--out", str(out)]
    if case == "odd":
        args = ["--images", *(str(tmp_path / "scans" / f) for f, _ in files[:3])]
    elif case == "empty csv":
        rows = []
    elif case == "one column":
        rows[1] = "scans/d1.png"
    elif case == "missing image":
        rows[2] = "scans/d3.png,scans/gone.png"
    elif case == "not an image":
        rows[1] = "scans/notes.png,scans/d2.png"
    elif case == "out over the model":
        args[-1] = str(trained / MODEL)
    elif case == "out over an image":
        args[-1] = str(tmp_path / "scans" / "d1.png")
    elif case == "out of another kind":
        args[-1] = str(tmp_path / "answers.txt")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + ("\n" if rows else ""))
    before = {p: p.read_bytes() for p in [*tmp_path.rglob("*.png"), trained / MODEL]}
    r = run_cli("search.predict", "--model", str(trained / MODEL), *args, cwd=tmp_path)
    assert_one_line_error(r, needle)
    assert not out.exists() and not (tmp_path / "answers.txt").exists()
    assert {p: p.read_bytes() for p in before} == before


def test_skip_bad_answers_every_good_pair_and_lists_the_bad(trained: Path, tmp_path: Path) -> None:
    digit_files(tmp_path / "scans")
    rows = ["scans/d1.png,scans/d2.png", "scans/d3.png,scans/gone.png", "scans/d5.png,scans/d6.png"]
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    r = run_cli("search.predict", "--model", str(trained / MODEL), "--pairs-csv", "pairs.csv",
                "--skip-bad", "--out", "answers.json", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        "search.predict: skipped row 2 of pairs.csv: scans/gone.png: no such image file",
        "search.predict: skipped 1 of 3 pairs",
    ]
    written = json.loads((tmp_path / "answers.json").read_text())
    assert [(a["first"], a["second"]) for a in written] == [
        ("scans/d1.png", "scans/d2.png"),
        ("scans/d5.png", "scans/d6.png"),
    ]
