#!/usr/bin/env python3
"""Generate the PyTorch interop fixtures in tests/fixtures/pytorch/.

Builds the reference CNN (python/filterlab_torch.py: RefCnn), trains it briefly
on the committed Fashion-MNIST sample (datasets/sample/, 10,000 train images;
default 2 epochs of Adam lr 1e-3, batch 64, pixels standardized with
0.2860/0.3530) so that its logits are meaningful, and writes:

  ref_cnn.pt              torch.save(model.state_dict()) (default zip format)
  ref_cnn.safetensors     safetensors.torch.save_file(state_dict)
  ref_cnn_inputs.json     the sample's first 16 test images, normalized
  ref_cnn_logits.json     PyTorch's eval-mode logits for them, and the
                          model's accuracy on the sample's 2,000 test images
  README.md               what each file is, how it was made, SHA-256s

Deterministic: torch.manual_seed(SEED), torch.use_deterministic_algorithms(True),
one thread. Every float in the JSON files is a float32 value written as the
decimal of its exact double (json's repr of float(np.float32(x))), so parsing it
to f64 and casting to f32, or parsing straight to f32, gives the same bits.

Usage (from the repository root):
  PY="$(python/setup-venv | tail -n1)"
  "$PY" python/make_fixtures.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import numpy as np
    import safetensors
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file
except ImportError as e:  # pragma: no cover
    sys.exit(f"make_fixtures.py: {e}; run it with the venv's python: \"$(python/setup-venv | tail -n1)\" {sys.argv[0]}")

import filterlab_torch as ft

N_INPUTS = 16


def f32_list(t: torch.Tensor) -> list[float]:
    """Flat list of Python floats, each exactly a float32 value."""
    a = t.detach().to(torch.float32).contiguous().numpy().ravel()
    return [float(v) for v in a]  # np.float32 -> exact double


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (head -30 python/make_fixtures.py) for the files written.",
    )
    ap.add_argument("--data", default=str(REPO / "datasets" / "sample"),
                    help="IDX directory to train on (default: the committed sample, %(default)s)")
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "pytorch"),
                    help="output directory (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed (default %(default)s)")
    ap.add_argument("--batch-size", type=int, default=64, help="default %(default)s")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default %(default)s)")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    mean, std = ft.FASHION_MEAN, ft.FASHION_STD

    try:
        train_u8, train_y = ft.load_idx(args.data, "train")
        test_u8, test_y = ft.load_idx(args.data, "test")
    except (FileNotFoundError, ft.IdxError) as e:
        sys.exit(f"make_fixtures.py: {e}")
    train_x = ft.normalize(train_u8, mean, std)
    test_x = ft.normalize(test_u8, mean, std)
    print(f"data: {args.data}: {len(train_y)} train, {len(test_y)} test images")

    model = ft.RefCnn()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(train_y), generator=gen)
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        acc, tl = ft.evaluate(model, test_x, test_y)
        print(f"epoch {epoch}: train loss {total / len(order):.4f}, sample test accuracy {acc:.4f}, "
              f"loss {tl:.4f} ({time.perf_counter() - t0:.1f} s)")

    model.eval()
    acc, tl = ft.evaluate(model, test_x, test_y)
    inputs = test_x[:N_INPUTS]
    with torch.no_grad():
        logits = model(inputs)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    torch.save(sd, out / "ref_cnn.pt")
    save_file(sd, str(out / "ref_cnn.safetensors"))

    inputs_doc = {
        "shape": list(inputs.shape),
        "normalization": {"mean": mean, "std": std},
        "labels": [int(v) for v in test_y[:N_INPUTS]],
        "values": f32_list(inputs),
    }
    logits_doc = {
        "shape": list(logits.shape),
        "values": f32_list(logits),
        "argmax": [int(v) for v in logits.argmax(1)],
        "sample_test_accuracy": acc,
        "sample_test_loss": float(np.float32(tl)),
        "sample_test_images": len(test_y),
        "torch_version": torch.__version__,
    }
    for name, doc in (("ref_cnn_inputs.json", inputs_doc), ("ref_cnn_logits.json", logits_doc)):
        (out / name).write_text(json.dumps(doc, separators=(",", ":")) + "\n")

    # Self-check: both files load back (strict) into a model that gives the same logits.
    for name in ("ref_cnn.pt", "ref_cnn.safetensors"):
        m = ft.RefCnn()
        m.load_state_dict(ft.load_state_dict_file(out / name), strict=True)
        m.eval()
        with torch.no_grad():
            if not torch.equal(m(inputs), logits):
                sys.exit(f"make_fixtures.py: {name} does not reproduce the logits")
    back = json.loads((out / "ref_cnn_inputs.json").read_text())
    if not torch.equal(torch.tensor(back["values"], dtype=torch.float32).reshape(inputs.shape), inputs):
        sys.exit("make_fixtures.py: ref_cnn_inputs.json does not round-trip")

    files = ["ref_cnn.pt", "ref_cnn.safetensors", "ref_cnn_inputs.json", "ref_cnn_logits.json"]
    hashes = {f: sha256(out / f) for f in files}
    sizes = {f: (out / f).stat().st_size for f in files}
    try:
        data_rel = Path(args.data).resolve().relative_to(REPO)
    except ValueError:
        data_rel = Path(args.data)
    cmd = "python/make_fixtures.py"
    defaults = ap.parse_args([])
    for flag in ("epochs", "seed", "batch_size", "lr"):
        if getattr(args, flag) != getattr(defaults, flag):
            cmd += f" --{flag.replace('_', '-')} {getattr(args, flag)}"
    if Path(args.data).resolve() != Path(defaults.data).resolve():
        cmd += f" --data {args.data}"
    readme = f"""# PyTorch interop fixtures

Made by `{cmd}` (run from the repository root with the venv's python:
`"$(python/setup-venv | tail -n1)" {cmd}`), torch {torch.__version__},
safetensors {safetensors.__version__}, numpy {np.__version__}.

The model is `RefCnn` from `python/filterlab_torch.py`:
conv1 `Conv2d(1, 32, 3, padding=1)`, ReLU, `MaxPool2d(2)`, conv2 `Conv2d(32, 64, 3, padding=1)`,
ReLU, `MaxPool2d(2)`, `torch.flatten(x, 1)` (channel-major C·H·W), fc1 `Linear(3136, 128)`, ReLU,
fc2 `Linear(128, 10)`; 421,642 parameters. It was trained for {args.epochs} epochs (Adam lr {args.lr},
eps 1e-8, batch {args.batch_size}, seed {args.seed}, one thread, deterministic algorithms) on the
{len(train_y):,} training images of `{data_rel}`, pixels standardized as `(p/255 - 0.2860)/0.3530`.
Its accuracy on that sample's {len(test_y):,} test images: {acc:.4f} (mean cross-entropy {tl:.4f}).

| file | bytes | what |
| --- | ---: | --- |
| `ref_cnn.pt` | {sizes['ref_cnn.pt']:,} | `torch.save(model.state_dict())`, default zip format; float32 tensors with keys `conv1.weight` [32,1,3,3], `conv1.bias` [32], `conv2.weight` [64,32,3,3], `conv2.bias` [64], `fc1.weight` [128,3136] (PyTorch's `[out, in]`), `fc1.bias` [128], `fc2.weight` [10,128], `fc2.bias` [10] |
| `ref_cnn.safetensors` | {sizes['ref_cnn.safetensors']:,} | the same state dict, `safetensors.torch.save_file` (F32, same keys and shapes) |
| `ref_cnn_inputs.json` | {sizes['ref_cnn_inputs.json']:,} | the first {N_INPUTS} test images of the sample, normalized: `shape` [{N_INPUTS},1,28,28], `normalization` (mean, std), `labels`, `values` (flat, row-major) |
| `ref_cnn_logits.json` | {sizes['ref_cnn_logits.json']:,} | PyTorch's eval-mode logits for those inputs: `shape` [{N_INPUTS},10], `values` (flat, row-major), `argmax`, `sample_test_accuracy`, `sample_test_loss`, `sample_test_images`, `torch_version` |

Every float in the JSON files is a float32 value written as the exact decimal of its double
widening, so it parses to the same float32 bits whether read as f32 or as f64 then cast.
The logits come from PyTorch's CPU kernels: another implementation should match them to a
float tolerance (summation order differs), not bit for bit.

Regenerating on another torch version or machine may change the bytes (and so the hashes below)
but not the file formats.

SHA-256:

```
""" + "".join(f"{hashes[f]}  {f}\n" for f in files) + "```\n"
    (out / "README.md").write_text(readme)

    print(f"sample test accuracy {acc:.4f}, loss {tl:.4f}; training took {time.perf_counter() - t0:.1f} s")
    for f in files:
        print(f"{hashes[f]}  {out / f}  ({sizes[f]:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
