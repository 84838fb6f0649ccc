#!/usr/bin/env python3
"""Evaluate a filterlab model's state dict (.safetensors or .pt) on Fashion-MNIST's test split.

Loads the file with strict=True into the model its keys describe
(python/filterlab_torch.py): a RefCnn (conv1/conv2/fc1/fc2, channel counts
read from the weights' shapes, so narrower, wider and compact pruned models load
too; --width insists on one multiplier) or a PlainCnn (convs.{i}/head; give its
--activation). A file whose keys or shapes differ fails with a message naming
them. Prints the test accuracy and mean cross-entropy.

Pixels: --normalize MEAN,STD or --pixels 0-1; without either, the
normalization recorded in a file written by `trainer export` (safetensors
metadata filterlab.normalization), else Fashion-MNIST's 0.2860,0.3530.

Examples (from the repository root):
  PY="$(python/setup-venv | tail -n1)"
  "$PY" python/evaluate.py tests/fixtures/pytorch/ref_cnn.safetensors --data datasets/sample
  "$PY" python/evaluate.py model.pt --pixels 0-1 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import torch
except ImportError as e:  # pragma: no cover
    sys.exit(f"evaluate.py: {e}; run it with the venv's python: \"$(python/setup-venv | tail -n1)\" {sys.argv[0]}")

import filterlab_torch as ft


def describe(model) -> str:
    if isinstance(model, ft.PlainCnn):
        return f"PlainCnn(widths={[c.out_channels for c in model.convs]}, activation={model.activation!r})"
    return f"RefCnn(channels={model.channels})"


def recorded_normalization(path: Path):
    """(mean, std) from a safetensors file's filterlab.normalization metadata, if any."""
    if path.suffix != ".safetensors":
        return None
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "filterlab.normalization" not in meta:
        return None
    n = json.loads(meta["filterlab.normalization"])
    return float(n["mean"]), float(n["std"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("weights", metavar="FILE",
                    help="state dict: .safetensors (safetensors.torch) or .pt/.pth (torch.save)")
    ap.add_argument("--data", default=ft.DEFAULT_DATA_DIR,
                    help="IDX directory (default %(default)s, from Debian's dataset-fashion-mnist; "
                         "datasets/sample for the committed sample)")
    ap.add_argument("--split", choices=["test", "train"], default="test", help="default %(default)s")
    ap.add_argument("--width", type=float, default=None,
                    help="RefCnn width multiplier (default: channel counts read from the weights)")
    ap.add_argument("--activation", choices=sorted(ft.ACTIVATIONS), default="relu",
                    help="PlainCnn nonlinearity (default %(default)s)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--batch-size", type=int, default=1000, help="evaluation batch (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ft.add_pixel_args(ap)
    args = ap.parse_args(argv)

    try:
        mean, std = ft.parse_pixel_args(args.normalize, args.pixels)
    except ValueError as e:
        ap.error(str(e))
    pixels_from = "given" if (args.normalize or args.pixels) else "default"
    ft.set_threads(args.threads)

    path = Path(args.weights)
    try:
        sd = ft.load_state_dict_file(path)
    except FileNotFoundError as e:
        sys.exit(f"evaluate.py: {e}")
    except Exception as e:  # corrupt or foreign file: say which and why
        msg = str(e).strip()
        if path.suffix != ".safetensors" and not zipfile.is_zipfile(path):
            msg = "not a torch.save zip archive (nor a loadable legacy .pt file)"
        elif len(msg) > 400:
            msg = msg[:400] + " ..."
        sys.exit(f"evaluate.py: cannot read {path} as a state dict: {type(e).__name__}: {msg}")

    try:
        if args.width is not None:
            model = ft.RefCnn(width=args.width)
        else:
            model = ft.model_for_state_dict(sd, activation=args.activation)
    except KeyError as e:
        sys.exit(f"evaluate.py: {path}: {e.args[0]}")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        expected = {k: list(v.shape) for k, v in model.state_dict().items()}
        got = {k: list(v.shape) if hasattr(v, "shape") else type(v).__name__ for k, v in sd.items()}
        sys.exit(f"evaluate.py: {path} does not match {describe(model)}:\n{e}\n"
                 f"  expected: {expected}\n  file has: {got}")
    bad = [k for k, v in sd.items() if v.dtype != torch.float32]
    if bad:
        print(f"evaluate.py: note: {', '.join(bad)} not float32 in {path}; converted", file=sys.stderr)

    try:
        images, labels = ft.load_idx(args.data, args.split)
    except (FileNotFoundError, ft.IdxError) as e:
        sys.exit(f"evaluate.py: {e}")
    if pixels_from == "default":
        recorded = recorded_normalization(path)
        if recorded is not None:
            mean, std = recorded
            pixels_from = "file metadata"
    x = ft.normalize(images, mean, std)
    t0 = time.perf_counter()
    acc, loss = ft.evaluate(model, x, labels, batch_size=args.batch_size)
    secs = time.perf_counter() - t0

    result = {
        "weights": str(path),
        "data": args.data,
        "split": args.split,
        "images": int(labels.shape[0]),
        "accuracy": acc,
        "loss": loss,
        "correct": round(acc * labels.shape[0]),
        "normalization": {"mean": mean, "std": std},
        "normalization_from": pixels_from,
        "model": describe(model),
        "parameters": ft.num_params(model),
        "seconds": round(secs, 3),
        "torch_version": torch.__version__,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{path}: {describe(model)} ({result['parameters']:,} parameters)")
        print(f"{args.data} {args.split}: {result['images']} images, pixels (p/255 - {mean})/{std} ({pixels_from})")
        print(f"accuracy {acc:.4f} ({result['correct']}/{result['images']}), loss {loss:.4f}  [{secs:.1f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
