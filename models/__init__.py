"""The model family for digit pairs and the one training loop. Never imports optuna."""

from models.config import FAMILIES, HEADS, MAX_ENSEMBLE, Config
from models.device import DEVICES, DeviceError, resolve_device
from models.model_file import ModelFileError, Prediction, SavedModel, load_model, save_model
from models.nets import parameter_count
from models.runs import Diverged, EpochStats, Run, TrainResult
from models.training import pack_size, train, train_runs

__all__ = [
    "DEVICES",
    "FAMILIES",
    "HEADS",
    "MAX_ENSEMBLE",
    "Config",
    "DeviceError",
    "Diverged",
    "EpochStats",
    "ModelFileError",
    "Prediction",
    "Run",
    "SavedModel",
    "TrainResult",
    "load_model",
    "pack_size",
    "parameter_count",
    "resolve_device",
    "save_model",
    "train",
    "train_runs",
]
