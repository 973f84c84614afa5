"""Training-step time of each weighting method relative to EW, through the real MTLModule step.

Runs ``--steps`` timed optimizer steps (after ``--warmup``) of a Lightning fit on one synthetic batch held
in memory, so data loading is excluded; on CUDA every step is synchronised before the clock is read.

    python scripts/bench_step.py --preset nyuv2            # ResNet-50 dilated + ASPP, batch 8, 288×384
    python scripts/bench_step.py --preset celeba40         # ResNet-18, 40 binary tasks, batch 256, 64×64
    python scripts/bench_step.py --preset digits --device cpu --methods ew rlw rgw cagrad

Methods are ``loss`` or ``loss+grad`` config names, optionally ``@param`` / ``@rep`` / ``@last_layer``
for the gradient mode (e.g. ``ew+mgda_ub@param``); the first is the baseline (ew by default). Writes a
Markdown table to stdout and, with ``--json``, the raw numbers.

``--clock cpu`` times the process's CPU seconds (``time.process_time``) instead of wall-clock seconds: on a
CPU shared with other work the wall clock measures the neighbours, the CPU time of a single-threaded
(``--threads 1``) process does not (as scripts/bench_jacobian.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from rw_mtl.build import build_module
from rw_mtl.data.nyuv2 import nyuv2_tasks
from rw_mtl.resources import CONFIG_DIR
from rw_mtl.tasks import ClassificationTask

PRESETS = {
    "nyuv2": {
        "overrides": ["dataset=nyuv2", "dataset.encoder.pretrained=false"],
        "tasks": nyuv2_tasks,
        "batch": lambda: _nyuv2_batch(8, 288, 384),
    },
    "celeba40": {
        "overrides": ["dataset=celeba"],  # its ResNet-18 and linear heads; the batch is the preset's
        "tasks": lambda: {f"attr{i}": ClassificationTask(2) for i in range(40)},
        "batch": lambda: _classification_batch(256, 3, 64, 40, 2),
    },
    "digits": {
        "overrides": [],
        "tasks": lambda: {f"digit{i}": ClassificationTask(10) for i in range(3)},
        "batch": lambda: _classification_batch(128, 1, 14, 3, 10),
    },
}
DEFAULT_METHODS = [
    "ew",
    "rlw",
    "uw",
    "dwa",
    "imtl_l",
    "ew+rgw",
    "ew+mgda_ub",
    "ew+gradnorm",
    "ew+pcgrad",
    "ew+graddrop",
    "ew+imtl_g",
    "ew+gradvac",
    "ew+cagrad",
    "ew+rotograd",
    "ew+fairgrad",
    "ew+sdmgrad",
    "ew+modo",
    "ew+moco",
    "ew+mgda_ub@param",
    "ew+imtl_g@param",
    "ew+rgw@param",
    "ew+fairgrad@rep",
    "ew+sdmgrad@rep",
    "ew+upgrad",
    "ew+dualproj",
    "ew+aligned_mtl",
    "ew+nash_mtl",
    "ew+config",
    "ew+krum",
    "ew+trimmed_mean",
    "ew+crmogm",
    "ew+pcd",
    "gls",
    "stch",
    "famo",
    "ew+db_mtl",
    "ew+excess_mtl",
    "ew+excess_mtl@rep",
]


def _nyuv2_batch(batch: int, height: int, width: int) -> dict:
    normal = torch.nn.functional.normalize(torch.randn(batch, 3, height, width), dim=1)
    return {
        "inputs": torch.rand(batch, 3, height, width),
        "targets": {
            "segmentation": torch.randint(-1, 13, (batch, height, width)),
            "depth": torch.rand(batch, 1, height, width) + 0.5,
            "normal": normal,
        },
    }


def _classification_batch(batch: int, channels: int, size: int, tasks: int, classes: int) -> dict:
    return {
        "inputs": torch.rand(batch, channels, size, size),
        "targets": {f"{name}": torch.randint(classes, (batch,)) for name in _names(tasks, classes)},
    }


def _names(tasks: int, classes: int) -> list[str]:
    return [f"attr{i}" for i in range(tasks)] if classes == 2 else [f"digit{i}" for i in range(tasks)]


class _OneBatch(Dataset):
    def __init__(self, batch: dict, length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.batch


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class _StepTimer(L.Callback):
    def __init__(self, warmup: int, clock=time.perf_counter) -> None:
        self.warmup, self.clock, self.times, self._start = warmup, clock, [], 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = self.clock()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if batch_idx >= self.warmup:
            self.times.append(self.clock() - self._start)


def _config(preset: dict, method: str, extra: list[str]):
    from hydra import compose, initialize_config_dir

    loss, _, grad = method.partition("+")
    grad, _, mode = grad.partition("@")
    overrides = [*preset["overrides"], f"weighting/loss={loss}", f"weighting/grad={grad or 'none'}", *extra]
    if mode:
        overrides.append(f"weighting.grad.mode={mode}")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[*overrides, "paths.output_dir=/tmp/rw_mtl_bench"])


def time_method(
    preset_name: str,
    method: str,
    steps: int,
    warmup: int,
    device: str,
    extra: list[str],
    clock=time.perf_counter,
) -> list[float]:
    preset = PRESETS[preset_name]
    torch.manual_seed(0)
    module = build_module(_config(preset, method, extra), preset["tasks"]())
    batch = preset["batch"]()
    loader = DataLoader(_OneBatch(batch, steps + warmup), batch_size=None)
    timer = _StepTimer(warmup, clock)
    trainer = L.Trainer(
        accelerator=device,
        devices=1,
        max_steps=steps + warmup,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=loader)
    return timer.times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="nyuv2")
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="auto", help="auto | cpu | gpu")
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for every method")
    parser.add_argument("--json", type=Path, help="also write the raw step times here")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]

    results = {}
    time_method(
        args.preset, args.methods[0], args.steps, args.warmup, args.device, args.override, clock
    )  # process warm-up
    for method in args.methods:
        times = time_method(args.preset, method, args.steps, args.warmup, args.device, args.override, clock)
        results[method] = times
        print(f"{method}: {1000 * statistics.median(times):.1f} ms/step", file=sys.stderr, flush=True)
    baseline = statistics.median(results[args.methods[0]])
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "CPU"
    print(
        f"preset {args.preset} · {device} · {torch.get_num_threads()} threads · {args.clock} clock · "
        f"median of {args.steps} steps after {args.warmup} warm-up\n"
    )
    print(f"| method | ms/step | × {args.methods[0]} |\n| --- | ---: | ---: |")
    for method, times in results.items():
        median = statistics.median(times)
        print(f"| {method} | {1000 * median:.1f} | {median / baseline:.2f} |")
    if args.json:
        args.json.write_text(
            json.dumps({"preset": args.preset, "device": device, "times_s": results}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
