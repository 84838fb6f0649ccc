#!/usr/bin/env python3
"""Train the reference CNN (RefCnn, python/filterlab_torch.py) with PyTorch.

Trains on a Fashion-MNIST IDX directory (raw or .gz files) with Adam
(lr 1e-3, eps 1e-8, betas 0.9/0.999), batch 64, cross-entropy, reshuffling the
training set every epoch, and prints the test accuracy and loss after each
epoch. Writes the final state dict to --out (torch.save) and, next to it, the
same tensors as <stem>.safetensors; both load with python/evaluate.py.

Example (from the repository root):
  PY="$(python/setup-venv | tail -n1)"
  "$PY" python/train_reference.py --epochs 2 --out runs/torch/ref_cnn.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    sys.exit(f"train_reference.py: {e}; run it with the venv's python: \"$(python/setup-venv | tail -n1)\" {sys.argv[0]}")

import filterlab_torch as ft


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Adam lr 1e-3, batch 64; per-epoch test accuracy.",
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", default=ft.DEFAULT_DATA_DIR,
                    help="IDX directory with train-/t10k- images and labels (default %(default)s, "
                         "from Debian's dataset-fashion-mnist)")
    ap.add_argument("--epochs", type=int, default=3, help="default %(default)s")
    ap.add_argument("--batch-size", type=int, default=64, help="default %(default)s")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seeds torch (initialization) and the shuffle (default %(default)s)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's choice, usually the core count)")
    ap.add_argument("--width", type=float, default=1.0,
                    help="channel multiplier: conv 32w/64w, fc1 128w (default %(default)s)")
    ap.add_argument("--deterministic", action="store_true",
                    help="torch.use_deterministic_algorithms(True)")
    ap.add_argument("--out", default=None, metavar="FILE.pt",
                    help="write the state dict here (torch.save) and to FILE.safetensors next to it")
    ap.add_argument("--json", action="store_true", help="also print a JSON summary as the last line")
    ft.add_pixel_args(ap)
    args = ap.parse_args(argv)

    if args.epochs < 0 or args.batch_size < 1:
        ap.error("--epochs must be >= 0 and --batch-size >= 1")
    try:
        mean, std = ft.parse_pixel_args(args.normalize, args.pixels)
    except ValueError as e:
        ap.error(str(e))
    if args.out is not None:
        out = Path(args.out)
        if out.suffix == ".safetensors":
            ap.error("--out names the .pt file; the .safetensors file is written next to it")
        if out.exists() and out.is_dir():
            ap.error(f"--out {out} is a directory")

    ft.set_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.deterministic:
        torch.use_deterministic_algorithms(True)

    try:
        train_u8, train_y = ft.load_idx(args.data, "train")
        test_u8, test_y = ft.load_idx(args.data, "test")
    except (FileNotFoundError, ft.IdxError) as e:
        sys.exit(f"train_reference.py: {e}")
    train_x = ft.normalize(train_u8, mean, std)
    test_x = ft.normalize(test_u8, mean, std)

    model = ft.RefCnn(width=args.width)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"data {args.data}: {len(train_y)} train, {len(test_y)} test; pixels (p/255 - {mean})/{std}; "
          f"RefCnn width {args.width}: {ft.num_params(model):,} parameters; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)

    history = []
    t_start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_y), generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            logits = model(train_x[idx])
            loss = F.cross_entropy(logits, train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == train_y[idx]).sum().item()
        train_s = time.perf_counter() - t0
        acc, loss = ft.evaluate(model, test_x, test_y)
        rec = {"epoch": epoch, "train_loss": loss_sum / len(order), "train_accuracy": correct / len(order),
               "test_accuracy": acc, "test_loss": loss, "train_seconds": round(train_s, 2),
               "epoch_seconds": round(time.perf_counter() - t0, 2)}
        history.append(rec)
        print(f"epoch {epoch}/{args.epochs}: train loss {rec['train_loss']:.4f} acc {rec['train_accuracy']:.4f} | "
              f"test acc {acc:.4f} loss {loss:.4f} | {train_s:.1f} s train, {rec['epoch_seconds']:.1f} s total",
              flush=True)
    total_s = time.perf_counter() - t_start

    if args.epochs == 0:
        acc, loss = ft.evaluate(model, test_x, test_y)
        print(f"untrained: test acc {acc:.4f} loss {loss:.4f}")

    written = []
    if args.out is not None:
        pt = Path(args.out)
        st = pt.with_suffix(".safetensors")
        ft.save_state_dict(model, pt)
        ft.save_state_dict(model, st)
        written = [str(pt), str(st)]
        print(f"wrote {pt} and {st}")
    print(f"done: {args.epochs} epochs in {total_s:.1f} s")
    if args.json:
        print(json.dumps({"data": args.data, "epochs": args.epochs, "seed": args.seed, "width": args.width,
                          "threads": torch.get_num_threads(), "normalization": {"mean": mean, "std": std},
                          "torch_version": torch.__version__, "seconds": round(total_s, 2),
                          "history": history, "files": written}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
