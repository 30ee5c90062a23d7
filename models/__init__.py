"""The model family for digit pairs, its training (one net at a time or packed, in fp32 or bf16)
and the model file. Never imports optuna."""

from models.config import FAMILIES, HEADS, MAX_ENSEMBLE, Config
from models.device import DEVICES, DeviceError, resolve_device
from models.model_file import ModelFileError, Prediction, SavedModel, load_model, save_model
from models.nets import parameter_count
from models.precision import AUTO_PRECISION, DEFAULT_PRECISION, PRECISIONS, resolve_precision
from models.runs import Diverged, EpochStats, Run, TrainResult
from models.training import pack_size, train, train_runs

__all__ = [
    "AUTO_PRECISION",
    "DEFAULT_PRECISION",
    "DEVICES",
    "FAMILIES",
    "HEADS",
    "MAX_ENSEMBLE",
    "PRECISIONS",
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
    "resolve_precision",
    "save_model",
    "train",
    "train_runs",
]
