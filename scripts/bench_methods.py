"""The gradient methods' own work on a [T, D] matrix of per-task gradients: what differs between two methods
that run in the same mode (the T backward passes that fill G are the same for all of them).

    python scripts/bench_methods.py --tasks 3 --dim 23500000            # NYUv2's ResNet-50, param mode
    python scripts/bench_methods.py --tasks 40 --dim 131072 --methods pcgrad upgrad nash_mtl

Times ``method.aggregate(G)`` — the Gram matrix (or, for coordinate-wise methods, the pass over G), the
method's T×T algebra and the combined direction — for each method, with the first one as the baseline
(pcgrad by default). ``--clock cpu`` times the process's CPU seconds instead of the wall clock (for a shared
CPU; use it with ``--threads 1``). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from rw_mtl.weighting import GRAD_METHODS, get

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
DEFAULT_METHODS = [
    "pcgrad",
    *(name for name in GRAD_METHODS if name not in ("pcgrad", "rotograd", "gradnorm")),
]


def time_aggregate(name: str, grads: torch.Tensor, repeats: int, clock) -> list[float]:
    """``repeats`` timings of ``get(name)(T).aggregate(grads)`` after one untimed call."""
    method = get(name)(grads.shape[0])
    losses = torch.ones(grads.shape[0], device=grads.device)
    method.aggregate(grads, losses)
    times = []
    for _ in range(repeats):
        if grads.is_cuda:
            torch.cuda.synchronize()
        started = clock()
        method.aggregate(grads, losses)
        if grads.is_cuda:
            torch.cuda.synchronize()
        times.append(clock() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--dim", type=int, default=1_000_000)
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    grads = torch.randn(args.tasks, args.dim, generator=torch.Generator().manual_seed(0)).to(args.device)
    results = {
        name: statistics.median(time_aggregate(name, grads, args.repeats, CLOCKS[args.clock]))
        for name in args.methods
    }
    baseline = results[args.methods[0]]
    print(
        f"G: {args.tasks} × {args.dim} float32 on {args.device} · {torch.get_num_threads()} threads · "
        f"{args.clock} clock · median of {args.repeats}\n"
    )
    print(f"| method | ms per call | × {args.methods[0]} |\n| --- | ---: | ---: |")
    for name, seconds in results.items():
        print(f"| {name} | {1000 * seconds:.1f} | {seconds / baseline:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
