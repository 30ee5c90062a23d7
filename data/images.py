"""A digit from an ordinary image file, brought to the protocol's input the way MNIST made its
own digits: the digit's bounding box scaled to fit 20x20 (aspect kept), placed in a 28x28
frame with its centre of mass at the centre, then avg-pooled to 14x14 on the 0-255 scale."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from data.errors import DataError
from data.sources import downsample

FORMATS = ("PNG", "JPEG")
MAX_PIXELS = 4096 * 4096  # a digit needs far fewer; larger files are refused before decoding
BOX = 20  # MNIST's digits fit a 20x20 box inside their 28x28 frame
FRAME = 28
# Pixels brighter than this share of the brightest pixel bound the digit; lower ones are
# anti-aliasing or compression noise.
BOUND = 0.1
MIN_CONTRAST = 32  # brightest ink above the background, on 0-255; less is a blank image


def read_digit(path: Path) -> torch.Tensor:
    """One digit image (PNG or JPEG, any size, light-on-dark or dark-on-light) -> [14, 14]
    float32 on the 0-255 scale, as the protocol's images are."""
    return downsample(mnist_frame(ink(open_image(path)), path=path).unsqueeze(0))[0]


def open_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path, formats=FORMATS)
            if image.width * image.height > MAX_PIXELS:
                raise DataError(f"{path}: {image.width}x{image.height} is too large for a digit")
            image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        # Pillow refuses a huge image before its size can be read here; its message has it.
        raise DataError(
            f"{path}: the image is too large for a digit ({e}); at most {MAX_PIXELS:,} pixels "
            "are read"
        ) from None
    except UnidentifiedImageError:
        raise DataError(f"{path} is not a PNG or JPEG image this can read") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read as an image ({e})") from None
    return image


def ink(image: Image.Image) -> np.ndarray:
    """The image as ink intensity [H, W] float, 0 where there is none. Where the image is
    partly transparent the opacity is the ink (a digit drawn on a transparent canvas); else the
    grey levels are, inverted when the border is lighter than the middle (dark on light)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[:, :, 3].astype(np.float32)
        if alpha.min() < 255:
            return alpha
    gray = np.asarray(image.convert("L")).astype(np.float32)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 127:
        gray = 255 - gray
        background = 255 - background
    return np.clip(gray - background, 0, None)


def mnist_frame(values: np.ndarray, *, path: Path) -> torch.Tensor:
    """Ink [H, W] -> [28, 28] float32, 0-255: MNIST's size normalization and centring."""
    peak = float(values.max()) if values.size else 0.0
    if peak < MIN_CONTRAST:
        raise DataError(f"{path}: no digit found (the image is blank or has no contrast)")
    rows = np.flatnonzero((values > BOUND * peak).any(1))
    cols = np.flatnonzero((values > BOUND * peak).any(0))
    crop = values[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] * (255.0 / peak)
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    box = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.LANCZOS))
    box = np.clip(box, 0, 255)
    # Place the box so that its centre of mass falls on the frame's centre, as MNIST did.
    ys, xs = np.indices(box.shape)
    mass = box.sum()
    top = round(FRAME / 2 - (ys * box).sum() / mass)
    left = round(FRAME / 2 - (xs * box).sum() / mass)
    top = min(max(top, 0), FRAME - box.shape[0])
    left = min(max(left, 0), FRAME - box.shape[1])
    frame = np.zeros((FRAME, FRAME), dtype=np.float32)
    frame[top : top + box.shape[0], left : left + box.shape[1]] = box
    return torch.from_numpy(frame)
