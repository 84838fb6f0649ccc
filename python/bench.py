#!/usr/bin/env python3
"""PyTorch's side of `cargo xtask bench --pytorch`: a model trained and evaluated exactly as
`trainer bench` does it, for a side-by-side throughput measurement.

Same model (python/filterlab_torch.py's RefCnn at --width, or its PlainCnn of --depth layers of
--width channels with ReLU), same data (the bundled sample, normalized
with Fashion-MNIST's statistics), same batch sizes, same optimizer (Adam, lr 1e-3, eps 1e-8,
cross-entropy loss), a fixed number of untimed warm-up steps, then timed steady-state steps;
inference in eval mode without gradients. PyTorch uses `torch.set_num_threads(--threads)`.

Prints one JSON object on stdout with the fields `trainer bench --json` uses
(train_images_per_sec, infer_images_per_sec, threads, batch_size, steps, peak_rss_mib) plus
the torch version.

    PY="$(python/setup-venv | tail -n1)"
    "$PY" python/bench.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from filterlab_torch import PlainCnn, RefCnn, load_idx, normalize  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def positive(v: str) -> int:
    n = int(v)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{v} is not a positive integer")
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=positive, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--steps", type=positive, default=60, help="timed training steps (default 60)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps (default 5)")
    ap.add_argument("--batch-size", type=positive, default=64, help="training batch (default 64)")
    ap.add_argument("--infer-batches", type=positive, default=20, help="timed inference batches")
    ap.add_argument("--infer-batch-size", type=positive, default=256, help="inference batch")
    ap.add_argument("--data", default=str(ROOT / "datasets" / "sample"), help="IDX directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", choices=["ref", "plain"], default="ref", help="architecture")
    ap.add_argument(
        "--width",
        type=float,
        help="ref: channel multiplier (default 1); plain: channels per layer (default 32)",
    )
    ap.add_argument("--depth", type=positive, help="plain: conv layers (default 20)")
    a = ap.parse_args()
    if a.model == "ref":
        if a.depth is not None:
            ap.error("--depth applies to --model plain only")
        width = 1.0 if a.width is None else a.width
        if not width > 0:
            ap.error(f"--width {width:g} is invalid: it is a positive multiplier")
        build = lambda: RefCnn(width=width)  # noqa: E731
        what = f"ref (width ×{width:g})"
    else:
        width = 32.0 if a.width is None else a.width
        if width < 1 or width != int(width):
            ap.error(f"--width {width:g} is invalid for the plain CNN: it is a channel count")
        depth = 20 if a.depth is None else a.depth
        build = lambda: PlainCnn([int(width)] * depth)  # noqa: E731
        what = f"plain (depth {depth}, width {int(width)}, relu)"

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train_x, train_y = load_idx(a.data, "train")
    test_x, _ = load_idx(a.data, "test")
    train_x, test_x = normalize(train_x), normalize(test_x)
    model = build()

    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    n, bs = train_x.shape[0], a.batch_size
    needed = (a.warmup + a.steps) * bs
    g = torch.Generator().manual_seed(a.seed)
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(needed // n + 1)])[:needed]

    model.train()
    t0 = time.perf_counter()
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            t0 = time.perf_counter()
        idx = order[i * bs : (i + 1) * bs]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
        loss.backward()
        opt.step()
    train_rate = a.steps * bs / (time.perf_counter() - t0)

    model.eval()
    ib = a.infer_batch_size
    test_order = torch.arange(ib * a.infer_batches) % test_x.shape[0]
    with torch.no_grad():
        model(test_x[test_order[:ib]])  # warm-up
        t1 = time.perf_counter()
        for b in range(a.infer_batches):
            model(test_x[test_order[b * ib : (b + 1) * ib]])
        infer_rate = ib * a.infer_batches / (time.perf_counter() - t1)

    print(
        json.dumps(
            {
                "backend": "pytorch",
                "torch": torch.__version__,
                "model": what,
                "threads": torch.get_num_threads(),
                "workers": 1,
                "batch_size": bs,
                "steps": a.steps,
                "train_images_per_sec": train_rate,
                "infer_images_per_sec": infer_rate,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "final_loss": loss.item(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
