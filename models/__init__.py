"""The model family for digit pairs and the one training loop. Never imports optuna."""

from models.config import FAMILIES, HEADS, MAX_ENSEMBLE, Config
from models.device import DEVICES, DeviceError, resolve_device
from models.nets import build_model, count_parameters
from models.training import Diverged, EpochStats, TrainResult, evaluate, train

__all__ = [
    "DEVICES",
    "FAMILIES",
    "HEADS",
    "MAX_ENSEMBLE",
    "Config",
    "DeviceError",
    "Diverged",
    "EpochStats",
    "TrainResult",
    "build_model",
    "count_parameters",
    "evaluate",
    "resolve_device",
    "train",
]
