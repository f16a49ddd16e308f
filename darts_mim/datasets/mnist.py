"""MNIST digits from idx files, and the Moving MNIST generator (Srivastava et al., 2015).

:func:`load_mnist_digits` reads the digits and labels (``mnist/`` of the data directory);
:func:`moving_mnist` bounces digits across a canvas, as arrays or as gridded ``TimeSeries``.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from darts import TimeSeries

from ..grid import grid_to_series
from .paths import DataNotFoundError
from .registry import fetch

_IDX_DTYPES = {0x08: np.uint8}


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an idx file (optionally gzipped) of unsigned bytes with ``ndim`` dimensions."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is corrupt ({err}); replace it with a fresh copy.") from err
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path} is not an idx file (bad magic number); replace it.")
    code, file_ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES or file_ndim != ndim:
        raise ValueError(
            f"{path}: idx header says type 0x{code:02x} with {file_ndim} dimensions; expected "
            f"unsigned bytes (0x08) with {ndim}. Is it the right file?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated (incomplete header); replace it.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: header says {dims} = {expected} values, found "
            f"{len(raw) - header}. Replace it with a fresh copy."
        )
    return np.frombuffer(raw, dtype=_IDX_DTYPES[code], offset=header).reshape(dims).copy()


def _find_idx(directory: Path, kind: str, ndim: int) -> Path | None:
    for prefix in ("t10k", "train"):
        for sep in ("-", "."):
            for ext in (".gz", ""):
                candidate = directory / f"{prefix}-{kind}{sep}idx{ndim}-ubyte{ext}"
                if candidate.is_file():
                    return candidate
    matches = sorted(directory.glob(f"*{kind}*idx{ndim}*"))
    return matches[0] if matches else None


def load_mnist_digits(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST digits and labels from idx files (gzipped or not).

    Source: MNIST (LeCun, Cortes, Burges), the official test set ``t10k``. Licence: CC BY-SA 3.0.

    Parameters
    ----------
    path
        A directory holding ``t10k-images-idx3-ubyte(.gz)`` and ``t10k-labels-idx1-ubyte(.gz)`` (or the
        ``train-`` files, or any ``*images*idx3*`` / ``*labels*idx1*`` pair), or the images file
        itself. ``None``: the registry's ``mnist_t10k_images`` and ``mnist_t10k_labels``
        (``DARTS_MIM_DATA``, ``../shared/data``, the cache, else downloaded from torchvision's mirror
        of the official files, sha256 checked; see :func:`darts_mim.datasets.registry.fetch`).

    Returns
    -------
    images : numpy.ndarray
        ``(N, 28, 28)`` uint8.
    labels : numpy.ndarray
        ``(N,)`` uint8 digit classes.

    Raises
    ------
    DataNotFoundError
        When the directory or a file is missing (also a ``ValueError``).
    ValueError
        When a file is corrupt or images and labels disagree in number.
    """
    if path is None:
        images_file, labels_file = fetch("mnist_t10k_images"), fetch("mnist_t10k_labels")
        return _read_pair(images_file, labels_file)
    p = Path(path).expanduser()
    if p.is_file():
        images_file = p
        labels_name = p.name.replace("images", "labels").replace("idx3", "idx1")
        labels_file = p.with_name(labels_name) if labels_name != p.name else None
        if labels_file is not None and not labels_file.is_file():
            labels_file = None
    elif p.is_dir():
        images_file = _find_idx(p, "images", 3)
        labels_file = _find_idx(p, "labels", 1)
    else:
        raise DataNotFoundError(
            f"No MNIST directory {p}. Pass the directory holding t10k-images-idx3-ubyte.gz and "
            "t10k-labels-idx1-ubyte.gz."
        )
    if images_file is None:
        raise DataNotFoundError(
            f"No MNIST images file (t10k-images-idx3-ubyte.gz or similar) in {p}."
        )
    if labels_file is None:
        raise DataNotFoundError(
            f"No MNIST labels file matching {images_file.name} (e.g. t10k-labels-idx1-ubyte.gz) "
            f"next to it in {images_file.parent}."
        )
    return _read_pair(images_file, labels_file)


def _read_pair(images_file: Path, labels_file: Path) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx(images_file, 3)
    labels = _read_idx(labels_file, 1)
    if len(images) != len(labels):
        raise ValueError(
            f"{images_file.name} has {len(images)} images but {labels_file.name} has {len(labels)} "
            "labels; use files of the same set."
        )
    return images, labels


def _bounce_trajectories(
    positions: np.ndarray, theta: np.ndarray, n_frames: int, step: float
) -> np.ndarray:
    """Positions in ``[0, 1]`` after each of ``n_frames`` steps, shape ``(n_frames, *positions.shape)``.

    ``positions[..., 0]`` is y (rows), ``positions[..., 1]`` is x; the velocity is
    ``step * (sin(theta), cos(theta))``. Each frame first moves, then bounces: a coordinate at or past
    an edge is clamped to it and that velocity component is negated.
    """
    pos = np.array(positions, dtype=np.float64)
    vel = step * np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    out = np.empty((n_frames, *pos.shape))
    for f in range(n_frames):
        pos += vel
        low = pos <= 0.0
        pos[low] = 0.0
        vel[low] = -vel[low]
        high = pos >= 1.0
        pos[high] = 1.0
        vel[high] = -vel[high]
        out[f] = pos
    return out


def moving_mnist(
    mnist_dir: str | os.PathLike | np.ndarray | None = None,
    n_sequences: int = 100,
    n_frames: int = 20,
    n_digits: int = 2,
    canvas: int = 64,
    seed: int = 0,
    as_series: bool = False,
    start: str | pd.Timestamp | int = "2000-01-01",
    freq: str | None = None,
    step: float = 0.1,
) -> np.ndarray | list[TimeSeries]:
    """Generate Moving MNIST sequences (Srivastava et al., 2015) with the standard recipe.

    For each sequence, ``n_digits`` digits are drawn uniformly from the MNIST set. Each starts at a
    uniform position in ``[0, 1)^2`` (in units of the free range ``canvas - 28``) with a uniform random
    direction; before every frame it moves ``step`` (0.1) along its direction, and a coordinate that
    reaches an edge is clamped to it and that velocity component negated (elastic bounce). A digit is
    drawn at pixel offset ``int(free * position)`` and digits are combined by pixel-wise maximum.

    Random draws use ``numpy.random.default_rng(seed)``, per sequence in this order: the digit indices,
    the ``(y, x)`` start of each digit, the directions. So the first sequences do not depend on
    ``n_sequences``.

    Parameters
    ----------
    mnist_dir
        A directory with MNIST idx files (see :func:`load_mnist_digits`), an ``(N, h, w)`` array of digit
        images (uint8 0..255 or floats in [0, 1]), or ``None`` for the registry's MNIST test set
        (see :func:`load_mnist_digits`).
    n_sequences, n_frames, n_digits, canvas
        Number of sequences, frames per sequence, digits per sequence, canvas side in pixels.
    seed
        Seed of the random generator.
    as_series
        Return a list of gridded ``TimeSeries`` (one channel ``"intensity"``) instead of an array.
    start
        First time stamp of each series (used with ``freq``; an int starts a ``RangeIndex``).
    freq
        ``None`` for a ``RangeIndex``, else a pandas frequency for a date index from ``start``.
    step
        Distance moved per frame, as a fraction of the free range.

    Returns
    -------
    numpy.ndarray or list of TimeSeries
        ``(n_sequences, n_frames, 1, canvas, canvas)`` float32 in ``[0, 1]``, or ``n_sequences`` series
        of ``n_frames`` steps and ``canvas * canvas`` components.
    """
    for label, value, low in (
        ("n_sequences", n_sequences, 1),
        ("n_frames", n_frames, 1),
        ("n_digits", n_digits, 1),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}.")
    if isinstance(mnist_dir, np.ndarray):
        images = mnist_dir
    else:
        images, _ = load_mnist_digits(mnist_dir)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"Digit images must be a non-empty (N, h, w) array, got {images.shape}.")
    if images.dtype == np.uint8:
        digits = images.astype(np.float32) / np.float32(255.0)
    else:
        digits = np.asarray(images, dtype=np.float32)
        if digits.min() < 0 or digits.max() > 1:
            raise ValueError("Float digit images must lie in [0, 1]; pass uint8 images or rescale.")
    size_y, size_x = digits.shape[1:]
    if canvas < max(size_y, size_x):
        raise ValueError(f"canvas ({canvas}) must be at least the digit size {digits.shape[1:]}.")

    rng = np.random.default_rng(seed)
    index = np.empty((n_sequences, n_digits), dtype=np.int64)
    start_pos = np.empty((n_sequences, n_digits, 2))
    theta = np.empty((n_sequences, n_digits))
    for i in range(n_sequences):
        index[i] = rng.integers(0, len(digits), size=n_digits)
        start_pos[i] = rng.random((n_digits, 2))
        theta[i] = rng.random(n_digits) * 2 * np.pi
    traj = _bounce_trajectories(start_pos, theta, n_frames, step)  # (F, S, D, 2)
    free = np.array([canvas - size_y, canvas - size_x], dtype=np.float64)
    offsets = (traj * free).astype(np.int32)

    out = np.zeros((n_sequences, n_frames, 1, canvas, canvas), dtype=np.float32)
    for s in range(n_sequences):
        for d in range(n_digits):
            digit = digits[index[s, d]]
            for f in range(n_frames):
                y, x = offsets[f, s, d]
                view = out[s, f, 0, y : y + size_y, x : x + size_x]
                np.maximum(view, digit, out=view)
    if not as_series:
        return out
    if freq is None:
        first = start if isinstance(start, int | np.integer) else 0
        times = pd.RangeIndex(first, first + n_frames)
    else:
        times = pd.date_range(start, periods=n_frames, freq=freq)
    return [grid_to_series(seq, times, ["intensity"]) for seq in out]
