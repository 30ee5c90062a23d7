"""A trained model as a file a user keeps: the nets' weights in safetensors, with the `Config`,
the normalization and the provenance as JSON in its header. Loading reads tensors and JSON
only, never pickled code, so a file from anyone is safe to open."""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from models.config import Config
from models.ensemble import Ensemble
from models.nets import build_model
from models.scoring import EVAL_BATCH, uses_channels_last

FORMAT = "digit-pairs-model"
FORMAT_VERSION = 1
# Ten nets of the largest configuration the search can sample stay far below this; anything
# bigger is not a model of ours and is refused before it is read.
MAX_BYTES = 1 << 30
# No configuration of ours has an integer beyond this (filters, units, batch, epochs): larger
# ones would only make torch fail deep inside.
MAX_INT = 1 << 20
# (mean, std) bounds: the mean of 0-255 grey levels lies in them; a std of 0-255 values is at
# most 127.5, and below 1 every input differs from the mean by hundreds of stds.
NORMALIZATION = ((0.0, 1.0), (255.0, 128.0))


class ModelFileError(Exception):
    """A file that is not a usable model of this project; the message names it and why."""


@dataclass(frozen=True)
class Prediction:
    p_le: torch.Tensor  # [N] P(first digit <= second digit)
    decision: torch.Tensor  # [N] bool, p_le >= 0.5
    digits: torch.Tensor  # [N, 2] the two digits the model reads
    digit_p: torch.Tensor  # [N, 2] the probability of each of those digits


@dataclass(frozen=True)
class SavedModel:
    """A loaded model file: the nets as one module in eval mode, and what describes them."""

    model: nn.Module  # one net, or an Ensemble of config.ensemble nets
    config: Config
    mean: float  # normalization of the round's training images (raw 0-255 scale)
    std: float
    info: dict[str, Any]  # provenance: study, trial, round seed, dataset, test accuracy, versions
    path: Path
    device: torch.device

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw pairs [N, 2, 14, 14] on the 0-255 scale -> the model's input, on its device."""
        return ((x.float() - self.mean) / self.std).to(self.device)

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> Prediction:
        """Raw pairs [N, 2, 14, 14] (0-255, as the protocol makes them) -> the comparison.
        Batches and memory layout are those of the training loop's evaluation, so a pair set
        scores here exactly as it scored there."""
        mains, digit_logits = [], []
        for start in range(0, len(x), EVAL_BATCH):
            inputs = self.normalize(x[start : start + EVAL_BATCH])
            if uses_channels_last(self.config):
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            main, digits = self.model(inputs)
            mains.append(main.float().softmax(1)[:, 1].cpu())
            digit_logits.append(digits.float().softmax(2).cpu())
        p_le = torch.cat(mains) if mains else torch.zeros(0)
        if not torch.isfinite(p_le).all():
            raise ModelFileError(f"{self.path}: the model gives no finite answer for these pairs")
        p_digits = torch.cat(digit_logits) if digit_logits else torch.zeros(0, 2, 10)
        digit_p, digits = p_digits.max(2)
        # > rather than >=: the training loop's argmax takes "first > second" on a tie.
        return Prediction(p_le, p_le > 0.5, digits, digit_p)


def save_model(
    path: Path,
    states: Sequence[Mapping[str, torch.Tensor]],
    *,
    config: Config,
    mean: float,
    std: float,
    info: Mapping[str, Any],
) -> None:
    """Write the state dicts of one trained model's config.ensemble nets to `path`, atomically
    (a reader sees the old file or the whole new one)."""
    if len(states) != config.ensemble:
        raise ValueError(f"config.ensemble is {config.ensemble} but {len(states)} nets were given")
    tensors = {
        f"members.{k}.{name}": t.detach().to("cpu").contiguous()
        for k, state in enumerate(states)
        for name, t in state.items()
    }
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(config.to_dict()),
        "normalization": json.dumps({"mean": mean, "std": std}),
        "info": json.dumps(dict(info)),
    }
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(save(tensors, metadata=header))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def load_model(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> SavedModel:
    """The model in `path`, on `device`, in eval mode. Raises ModelFileError, naming the file,
    for anything that is not a complete model file of this project's format."""
    path = Path(path)
    check_regular_file(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            check_format(path, header)
            config = parse_config(path, header)
            mean, std = parse_normalization(path, header)
            info = parse_json(path, header, "info")
            # The shapes the config implies, from nets on the meta device (no memory), are
            # checked against the file's before a byte of weights is read.
            shapes = expected_shapes(path, config)
            found = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118
            check_shapes(path, shapes, found)
            tensors = {key: f.get_tensor(key) for key in shapes}
    except SafetensorError as e:
        raise ModelFileError(f"{path} is not a readable model file ({e})") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot be read ({e.strerror})") from None
    if not all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point()):
        raise ModelFileError(f"{path}: its weights are not all finite numbers")
    nets = []
    for k in range(config.ensemble):
        net = build_model(config)
        prefix = f"members.{k}."
        net.load_state_dict(
            {key[len(prefix) :]: tensors[key] for key in shapes if key.startswith(prefix)}
        )
        nets.append(net)
    target = torch.device(device)
    model = (nets[0] if len(nets) == 1 else Ensemble(nets)).to(target).eval()
    if uses_channels_last(config):
        model = model.to(memory_format=torch.channels_last)
    return SavedModel(model, config, mean, std, info, path, target)


def expected_shapes(path: Path, config: Config) -> dict[str, tuple[int, ...]]:
    """Every tensor the config's nets have, with its shape, from a net built on the meta
    device (no memory); a config that cannot build a net is refused here."""
    try:
        with torch.device("meta"):
            net = build_model(config)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path}: its config is invalid ({e})") from None
    return {
        f"members.{k}.{name}": tuple(t.shape)
        for k in range(config.ensemble)
        for name, t in net.state_dict().items()
    }


def check_shapes(
    path: Path, expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]]
) -> None:
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has {extra[0]!r}, which no net has"
        raise ModelFileError(
            f"{path}: its weights do not fit its configuration ({what}; "
            f"{len(missing)} missing, {len(extra)} unexpected tensors)"
        )
    for key, shape in expected.items():
        if found[key] != shape:
            raise ModelFileError(
                f"{path}: its weights do not fit its configuration "
                f"({key} is {list(found[key])}, the configuration needs {list(shape)})"
            )


def check_regular_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"{path} is not a regular file")
    if st.st_size > MAX_BYTES:
        raise ModelFileError(f"{path} is {st.st_size} bytes, larger than any model of ours")


def check_format(path: Path, header: Mapping[str, str]) -> None:
    if header.get("format") != FORMAT:
        raise ModelFileError(
            f"{path} is a safetensors file but not a digit-pair model (no {FORMAT!r} header)"
        )
    version = header.get("format_version", "")
    # ASCII digits, a few of them: str.isdigit() also takes "²", and int() refuses 4,300 digits.
    if not (version.isascii() and version.isdigit() and len(version) <= 9):
        raise ModelFileError(f"{path}: format version {version[:20]!r} is not a number")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has format version {version}, newer than this release reads "
            f"({FORMAT_VERSION}); upgrade digit-pair-search to load it"
        )


def parse_json(path: Path, header: Mapping[str, str], key: str) -> dict[str, Any]:
    try:
        value = json.loads(header[key])
    except (KeyError, json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep
        raise ModelFileError(f"{path}: its header has no readable {key!r}") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{path}: its header's {key!r} is not an object")
    return value


def parse_config(path: Path, header: Mapping[str, str]) -> Config:
    values = parse_json(path, header, "config")
    known = {f.name for f in fields(Config)}
    if set(values) != known:
        wrong = sorted(set(values) ^ known)
        raise ModelFileError(f"{path}: its config does not match this release's ({wrong[:3]})")
    for f in fields(Config):
        value, default = values[f.name], getattr(Config, f.name)
        wanted = (int, float) if isinstance(default, float) else type(default)
        if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, wanted):
            raise ModelFileError(f"{path}: its config's {f.name} is {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_INT:
            shown = str(value) if abs(value) < 10**12 else f"a number of {len(str(value))} digits"
            raise ModelFileError(f"{path}: its config's {f.name} is out of range ({shown})")
        if isinstance(value, float) and not math.isfinite(value):
            raise ModelFileError(f"{path}: its config's {f.name} is {value}")
    try:
        return Config(**values)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: its config is invalid ({e})") from None


def parse_normalization(path: Path, header: Mapping[str, str]) -> tuple[float, float]:
    values = parse_json(path, header, "normalization")
    mean, std = values.get("mean"), values.get("std")
    ok = all(isinstance(v, int | float) and math.isfinite(v) for v in (mean, std))
    if not ok or std <= 0:  # type: ignore[operator]
        raise ModelFileError(f"{path}: its normalization is not a finite mean and positive std")
    # Grey levels are 0-255: a mean outside them, or a std that squeezes every input to one
    # value (or spreads it past any trained range), is not a normalization a run can make.
    low, high = NORMALIZATION
    if not (low[0] <= mean <= high[0] and low[1] <= std <= high[1]):  # type: ignore[operator]
        raise ModelFileError(
            f"{path}: its normalization (mean {mean:.4g}, std {std:.4g}) is not one of 0-255 "
            "grey levels"
        )
    return float(mean), float(std)  # type: ignore[arg-type]
