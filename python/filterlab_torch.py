#!/usr/bin/env python3
"""PyTorch reference side of filterlab's interop with PyTorch.

Shared by python/make_fixtures.py, python/train_reference.py and
python/evaluate.py:

* ``load_idx(dir, split)``  -- Fashion-MNIST / MNIST IDX files (raw or .gz),
  strict header checks; uint8 images [N, 28, 28] and int64 labels [N].
* ``RefCnn``                -- the reference CNN, with PyTorch state-dict keys
  conv1.weight [32,1,3,3], conv1.bias [32], conv2.weight [64,32,3,3],
  conv2.bias [64], fc1.weight [128,3136], fc1.bias [128], fc2.weight [10,128],
  fc2.bias [10]  (421,642 parameters at width 1).
* ``PlainCnn``              -- the plain CNN (keys convs.{i}.weight/bias,
  head.weight/bias); ``model_for_state_dict`` builds whichever a state dict holds.
* ``normalize(images, mean, std)`` -- float32 ``(p/255 - mean)/std``,
  [N, 1, 28, 28]; ``mean=0, std=1`` gives plain p/255.
* ``evaluate(model, images, labels)`` -- accuracy and mean cross-entropy.
* ``load_state_dict_file(path)`` / ``save_state_dict(model, path)`` for
  ``.pt`` (torch.save zip format) and ``.safetensors`` files.

Run this file directly for a tiny self-check:  python3 python/filterlab_torch.py
"""

from __future__ import annotations

import argparse
import gzip
import os
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

#: Fashion-MNIST training-split statistics used by filterlab (pixels in [0, 1]).
FASHION_MEAN = 0.2860
FASHION_STD = 0.3530

#: Where Debian's dataset-fashion-mnist package puts the full data set.
DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"

IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension

_PREFIX = {"train": "train", "test": "t10k", "t10k": "t10k"}


class IdxError(ValueError):
    """A missing, truncated or malformed IDX file."""


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        p = directory / name
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"{directory}: neither {stem} nor {stem}.gz found "
        f"(for the full Fashion-MNIST: apt-get install dataset-fashion-mnist, "
        f"files in {DEFAULT_DATA_DIR})"
    )


def _read(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise IdxError(f"{path}: cannot read: {e}") from e


def _parse(path: Path, data: bytes, magic: int, ndim: int) -> np.ndarray:
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: {len(data)} bytes, shorter than the {header}-byte IDX header")
    (got,) = struct.unpack(">I", data[:4])
    if got != magic:
        raise IdxError(f"{path}: magic 0x{got:08x}, expected 0x{magic:08x}")
    dims = struct.unpack(">" + "I" * ndim, data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise IdxError(
            f"{path}: {len(data)} bytes, header {list(dims)} implies {expected}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_idx(directory, split: str):
    """Read ``split`` ("train" or "test"/"t10k") from an IDX directory.

    Accepts ``<prefix>-images-idx3-ubyte`` / ``<prefix>-labels-idx1-ubyte``,
    raw or gzip-compressed (``.gz``). Checks the magic numbers, that images
    are 28x28, that the file sizes match their headers, that the counts agree
    and that labels are in 0..9.

    Returns ``(images, labels)``: a uint8 tensor [N, 28, 28] and an int64
    tensor [N].
    """
    if split not in _PREFIX:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"data directory {d} does not exist")
    prefix = _PREFIX[split]
    ipath = _find(d, f"{prefix}-images-idx3-ubyte")
    lpath = _find(d, f"{prefix}-labels-idx1-ubyte")
    images = _parse(ipath, _read(ipath), IMAGES_MAGIC, 3)
    labels = _parse(lpath, _read(lpath), LABELS_MAGIC, 1)
    if images.shape[1:] != (28, 28):
        raise IdxError(f"{ipath}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if images.shape[0] != labels.shape[0]:
        raise IdxError(
            f"{ipath} has {images.shape[0]} images but {lpath} has {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise IdxError(f"{lpath}: label {int(labels.max())} out of range 0..9")
    return (
        torch.from_numpy(images.copy()),
        torch.from_numpy(labels.astype(np.int64)),
    )


def normalize(images_uint8, mean: float = FASHION_MEAN, std: float = FASHION_STD) -> torch.Tensor:
    """uint8 [N, 28, 28] (or [N, 1, 28, 28]) -> float32 [N, 1, 28, 28].

    Computes ``(p/255 - mean)/std`` in float32 (the division by 255 first,
    then the subtraction, then the division by std, each rounded to float32).
    ``mean=0, std=1`` gives plain ``p/255``.
    """
    x = torch.as_tensor(images_uint8)
    if x.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 pixels, got {x.dtype}")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"normalize expects [N,28,28] or [N,1,28,28], got {list(x.shape)}")
    x = x.to(torch.float32) / 255.0
    m = torch.tensor(mean, dtype=torch.float32)
    s = torch.tensor(std, dtype=torch.float32)
    return (x - m) / s


def parse_pixel_args(normalize_arg: str | None, pixels_arg: str | None) -> tuple[float, float]:
    """Turn ``--normalize MEAN,STD`` / ``--pixels 0-1`` into ``(mean, std)``.

    Neither given: Fashion-MNIST's (0.2860, 0.3530).
    """
    if normalize_arg is not None and pixels_arg is not None:
        raise ValueError("give either --normalize or --pixels, not both")
    if pixels_arg is not None:
        if pixels_arg != "0-1":
            raise ValueError(f"--pixels accepts only '0-1', not {pixels_arg!r}")
        return 0.0, 1.0
    if normalize_arg is not None:
        parts = normalize_arg.split(",")
        try:
            mean, std = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"--normalize expects MEAN,STD (e.g. 0.2860,0.3530), not {normalize_arg!r}") from None
        if not std > 0:
            raise ValueError(f"--normalize: std must be positive, got {std}")
        return mean, std
    return FASHION_MEAN, FASHION_STD


def add_pixel_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_mutually_exclusive_group()
    g.add_argument(
        "--normalize", metavar="MEAN,STD",
        help="standardize pixels as (p/255 - MEAN)/STD "
             f"(default {FASHION_MEAN},{FASHION_STD}: Fashion-MNIST's training split, as filterlab does)",
    )
    g.add_argument(
        "--pixels", metavar="0-1", choices=["0-1"],
        help="plain p/255 pixels in [0, 1], no standardization",
    )


class RefCnn(nn.Module):
    """conv1(1->32,3x3,pad 1) ReLU maxpool2 conv2(32->64,3x3,pad 1) ReLU maxpool2
    flatten(C,H,W) fc1(3136->128) ReLU fc2(128->10).

    ``width`` scales the channel counts: round(32w), round(64w), round(128w);
    ``channels=(c1, c2, hidden)`` gives them explicitly (a compact pruned model).
    """

    def __init__(self, width: float = 1.0, num_classes: int = 10, channels=None):
        super().__init__()
        if channels is None:
            channels = tuple(max(1, int(round(c * width))) for c in (32, 64, 128))
        c1, c2, h = channels
        self.width = width
        self.channels = (c1, c2, h)
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc1 = nn.Linear(c2 * 7 * 7, h)
        self.fc2 = nn.Linear(h, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


ACTIVATIONS = {
    "relu": F.relu,
    "leaky-relu": lambda x: F.leaky_relu(x, 0.01),
    "tanh": torch.tanh,
    "identity": lambda x: x,
}


class PlainCnn(nn.Module):
    """filterlab's plain CNN: conv 3x3 (pad 1) layers of ``widths`` channels,
    each followed by ``activation``, global average pooling and a linear head.
    State-dict keys convs.{i}.weight/bias and head.weight/bias."""

    def __init__(self, widths, activation: str = "relu", num_classes: int = 10):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {activation!r}")
        ins = [1] + list(widths[:-1])
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for i, o in zip(ins, widths))
        self.head = nn.Linear(widths[-1], num_classes)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = ACTIVATIONS[self.activation]
        for conv in self.convs:
            x = act(conv(x))
        return self.head(x.mean(dim=(2, 3)))


def model_for_state_dict(sd: dict, activation: str = "relu") -> nn.Module:
    """The filterlab model whose keys and shapes ``sd`` has: a PlainCnn if it
    has convs.0.weight, else a RefCnn with conv1/conv2/fc1's channel counts."""
    if "convs.0.weight" in sd:
        depth = 0
        while f"convs.{depth}.weight" in sd:
            depth += 1
        widths = [sd[f"convs.{i}.weight"].shape[0] for i in range(depth)]
        return PlainCnn(widths, activation=activation, num_classes=sd["head.weight"].shape[0])
    for key in ("conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"):
        if key not in sd:
            raise KeyError(f"not a RefCnn or PlainCnn state dict: no {key} (keys: {sorted(sd)})")
    channels = tuple(sd[k].shape[0] for k in ("conv1.weight", "conv2.weight", "fc1.weight"))
    return RefCnn(channels=channels, num_classes=sd["fc2.weight"].shape[0])


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def width_of_state_dict(sd: dict) -> float:
    """Infer RefCnn's width multiplier from conv1.weight's output channels."""
    if "conv1.weight" not in sd:
        raise KeyError(f"not a RefCnn state dict: no conv1.weight (keys: {sorted(sd)})")
    return sd["conv1.weight"].shape[0] / 32.0


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000):
    """Accuracy and mean cross-entropy of ``model`` on normalized ``images``
    [N,1,28,28] float32 and int64 ``labels``, in eval mode. Returns
    ``(accuracy, loss)`` as Python floats."""
    was_training = model.training
    model.eval()
    correct = 0
    loss_sum = 0.0
    n = images.shape[0]
    for i in range(0, n, batch_size):
        x = images[i:i + batch_size]
        y = labels[i:i + batch_size]
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    model.train(was_training)
    return correct / n, loss_sum / n


def load_state_dict_file(path) -> dict:
    """Load a state dict from ``.safetensors`` or ``.pt``/``.pth`` (torch.save)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"state-dict file {p} does not exist")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(p))
    obj = torch.load(str(p), map_location="cpu", weights_only=True)
    if isinstance(obj, nn.Module):  # pragma: no cover (weights_only forbids it)
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise ValueError(f"{p}: expected a state dict (dict of tensors), got {type(obj).__name__}")
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return obj


def save_state_dict(model: nn.Module, path) -> None:
    """``.safetensors`` via safetensors.torch.save_file, anything else via torch.save."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if p.suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file(sd, str(p))
    else:
        torch.save(sd, str(p))


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


def _selfcheck() -> int:
    m = RefCnn()
    shapes = {k: list(v.shape) for k, v in m.state_dict().items()}
    expect = {
        "conv1.weight": [32, 1, 3, 3], "conv1.bias": [32],
        "conv2.weight": [64, 32, 3, 3], "conv2.bias": [64],
        "fc1.weight": [128, 3136], "fc1.bias": [128],
        "fc2.weight": [10, 128], "fc2.bias": [10],
    }
    assert shapes == expect, shapes
    assert num_params(m) == 421_642, num_params(m)
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    half = RefCnn(width=0.5)
    assert half(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert width_of_state_dict(half.state_dict()) == 0.5
    compact = model_for_state_dict(RefCnn(channels=(32, 20, 128)).state_dict())
    assert compact.channels == (32, 20, 128)
    plain = model_for_state_dict(PlainCnn([4, 6, 8]).state_dict())
    assert [c.out_channels for c in plain.convs] == [4, 6, 8]
    assert plain(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    x = normalize(torch.tensor([[[0, 255] + [0] * 782]], dtype=torch.uint8).reshape(1, 28, 28))
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    print(f"ok: RefCnn {num_params(m)} parameters, torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(_selfcheck())
