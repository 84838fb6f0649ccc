#!/usr/bin/env python3
"""Build datasets/sample/ from the full Fashion-MNIST: a class-balanced subset.

Keeps the first 1,000 images of each class from the training split and the first 200 of each
class from the test split, in their original (already shuffled) order, so any prefix of the
sample is roughly balanced too. Output is gzip with a zero timestamp, so the files (and their
SHA-256 sums) are byte-for-byte reproducible.

usage: datasets/make_sample.py [SOURCE_DIR] [OUT_DIR]
  SOURCE_DIR defaults to /usr/share/datasets/fashion-mnist (Debian: dataset-fashion-mnist)
"""
import gzip
import hashlib
import os
import struct
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "sample")
PER_CLASS = {"train": 1000, "t10k": 200}


def read(path):
    with gzip.open(path, "rb") as f:
        return f.read()


def subset(split):
    images = read(os.path.join(SRC, f"{split}-images-idx3-ubyte.gz"))
    labels = read(os.path.join(SRC, f"{split}-labels-idx1-ubyte.gz"))
    magic, n, rows, cols = struct.unpack(">IIII", images[:16])
    assert magic == 0x803 and rows == 28 and cols == 28
    assert struct.unpack(">II", labels[:8]) == (0x801, n)
    size = rows * cols
    taken = {c: 0 for c in range(10)}
    keep = []
    for i in range(n):
        c = labels[8 + i]
        if taken[c] < PER_CLASS[split]:
            taken[c] += 1
            keep.append(i)
    img = struct.pack(">IIII", 0x803, len(keep), rows, cols) + b"".join(
        images[16 + i * size : 16 + (i + 1) * size] for i in keep
    )
    lab = struct.pack(">II", 0x801, len(keep)) + bytes(labels[8 + i] for i in keep)
    return img, lab


def write(name, payload):
    path = os.path.join(OUT, name + ".gz")
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(payload)
    with open(path, "rb") as f:
        print(hashlib.sha256(f.read()).hexdigest(), os.path.basename(path))


os.makedirs(OUT, exist_ok=True)
for split in ("train", "t10k"):
    img, lab = subset(split)
    write(f"{split}-images-idx3-ubyte", img)
    write(f"{split}-labels-idx1-ubyte", lab)
