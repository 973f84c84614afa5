"""Training-step time of each weighting method relative to EW, through the real MTLModule step.

Runs ``--steps`` timed optimizer steps (after ``--warmup``) of a Lightning fit on one synthetic batch held
in memory, so data loading is excluded; on CUDA every step is synchronised before the clock is read. The
batch comes from a data module whose training and validation loaders both yield it, so methods that draw
extra training batches (SDMGrad, MoDo) or validation batches (MOML, Auto-λ, FORUM) run as in training.

    python scripts/bench_step.py --preset nyuv2            # ResNet-50 dilated + ASPP, batch 8, 288×384
    python scripts/bench_step.py --preset celeba40         # ResNet-18, 40 binary tasks, batch 256, 64×64
    python scripts/bench_step.py --preset digits --device cpu --methods ew rlw rgw cagrad
    python scripts/bench_step.py --preset nyuv2 --batch-size 2 --resolution 96x128   # the same model, smaller

``--batch-size`` and ``--resolution HxW`` replace the preset's batch size and input size (any preset; the
model is the preset's either way), for a CPU on which the full-size step takes too long.

Methods are ``loss`` or ``loss+grad`` config names, optionally ``@param`` / ``@rep`` / ``@last_layer``
for the gradient mode (e.g. ``ew+mgda_ub@param``) and ``:key=value,…`` for hyperparameters of the gradient
method, or of the loss method when there is none (``ew+sdmgrad@rep:sampling=halves``,
``auto_lambda:init=0.5``); the first is the baseline (ew by default). A method
named twice is timed twice (rows ``name`` and ``name (2)``), which shows the run-to-run noise. The
default list has every registered method in its default mode and the variants in ``MODE_VARIANTS``.
Writes a Markdown table to stdout and, with ``--json``, the raw numbers.

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
from rw_mtl.quiet import silence_library_noise
from rw_mtl.resources import CONFIG_DIR
from rw_mtl.tasks import ClassificationTask
from rw_mtl.train import free_finished_run
from rw_mtl.weighting import GRAD_METHODS, LOSS_METHODS

# "batch_size" and "resolution" (height, width) are the defaults of --batch-size and --resolution;
# "batch" builds the synthetic batch from them.
PRESETS = {
    "nyuv2": {
        "overrides": ["dataset=nyuv2", "dataset.encoder.pretrained=false"],
        "tasks": nyuv2_tasks,
        "batch_size": 8,
        "resolution": (288, 384),
        "batch": lambda size, height, width: _nyuv2_batch(size, height, width),
    },
    "celeba40": {
        "overrides": ["dataset=celeba"],  # its ResNet-18 and linear heads; the batch is the preset's
        "tasks": lambda: {f"attr{i}": ClassificationTask(2) for i in range(40)},
        "batch_size": 256,
        "resolution": (64, 64),
        "batch": lambda size, height, width: _classification_batch(size, 3, (height, width), 40, 2),
    },
    "digits": {
        "overrides": [],
        "tasks": lambda: {f"digit{i}": ClassificationTask(10) for i in range(3)},
        "batch_size": 128,
        "resolution": (14, 14),
        "batch": lambda size, height, width: _classification_batch(size, 1, (height, width), 3, 10),
    },
}
# Modes and options other than a method's defaults that the default list also times (see docs/perf.md).
MODE_VARIANTS = [
    "ew+mgda_ub@param",
    "ew+imtl_g@param",
    "ew+rgw@param",
    "ew+pcgrad@rep",
    "ew+fairgrad@rep",
    "ew+sdmgrad@rep",
    "ew+modo@rep",
    "ew+sdmgrad:sampling=halves",
    "ew+modo:sampling=halves",
    "ew+sdmgrad@rep:sampling=halves",
    "ew+modo@rep:sampling=halves",
    "ew+excess_mtl@rep",
]
DEFAULT_METHODS = [
    "ew",
    *(name for name in LOSS_METHODS if name != "ew"),
    *(f"ew+{name}" for name in GRAD_METHODS),
    *MODE_VARIANTS,
]


def preset_batch(
    preset: dict, batch_size: int | None = None, resolution: tuple[int, int] | None = None
) -> dict:
    """The preset's synthetic batch, at ``batch_size`` and ``resolution`` (height, width) where given."""
    height, width = resolution or preset["resolution"]
    return preset["batch"](batch_size or preset["batch_size"], height, width)


def parse_resolution(text: str) -> tuple[int, int]:
    """``"96x128"`` → (96, 128): the input's height and width."""
    height, sep, width = text.lower().partition("x")
    if not (sep and height.isdigit() and width.isdigit() and int(height) > 0 and int(width) > 0):
        raise argparse.ArgumentTypeError(
            f"--resolution wants HEIGHTxWIDTH in pixels (e.g. 96x128), got {text!r}"
        )
    return int(height), int(width)


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


def _classification_batch(batch: int, channels: int, size: tuple[int, int], tasks: int, classes: int) -> dict:
    return {
        "inputs": torch.rand(batch, channels, *size),
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


class _OneBatchData(L.LightningDataModule):
    """Training and validation loaders over the same in-memory batch: the step's extra training batches and
    a bilevel method's validation batches come through the data module, as in a real run."""

    def __init__(self, batch: dict, length: int) -> None:
        super().__init__()
        self.batch, self.length = batch, length

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_OneBatch(self.batch, self.length), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_OneBatch(self.batch, 1), batch_size=None)


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

    method, _, hparams = method.partition(":")
    loss, _, grad = method.partition("+")
    grad, _, mode = grad.partition("@")
    overrides = [*preset["overrides"], f"weighting/loss={loss}", f"weighting/grad={grad or 'none'}", *extra]
    if mode:
        overrides.append(f"weighting.grad.mode={mode}")
    group = "grad" if grad else "loss"
    overrides += [f"weighting.{group}.hparams.{setting}" for setting in hparams.split(",") if setting]
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
    batch_size: int | None = None,
    resolution: tuple[int, int] | None = None,
) -> list[float]:
    """The step times (seconds on ``clock``) of ``steps`` optimizer steps after ``warmup`` untimed ones."""
    preset = PRESETS[preset_name]
    torch.manual_seed(0)
    module = build_module(_config(preset, method, extra), preset["tasks"]())
    data = _OneBatchData(preset_batch(preset, batch_size, resolution), steps + warmup)
    times = _timed_fit(module, data, steps + warmup, _StepTimer(warmup, clock), device)
    del module, data
    free_finished_run()  # else the methods timed so far stay in memory (the NYUv2 OOM in docs/perf.md)
    return times


def _timed_fit(module: L.LightningModule, data: L.LightningDataModule, steps: int, timer, device: str):
    """``timer``'s step times over a fit of ``steps`` optimizer steps (the trainer ends with this call)."""
    trainer = L.Trainer(
        accelerator=device,
        devices=1,
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=data)
    return timer.times


def _unique_label(method: str, taken: dict) -> str:
    """``method``, or ``method (2)``, ``(3)``… when it is timed again (a repeat shows the noise)."""
    label, repeat = method, 2
    while label in taken:
        label, repeat = f"{method} ({repeat})", repeat + 1
    return label


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
    parser.add_argument("--batch-size", type=int, default=None, help="instead of the preset's batch size")
    parser.add_argument(
        "--resolution", type=parse_resolution, default=None, help="HxW input size instead of the preset's"
    )
    parser.add_argument("--list", action="store_true", help="print the methods that would be timed and exit")
    args = parser.parse_args(argv)
    silence_library_noise()
    if args.list:
        print("\n".join(args.methods))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]
    size = {"batch_size": args.batch_size, "resolution": args.resolution}

    def run(method: str) -> list[float]:
        return time_method(
            args.preset, method, args.steps, args.warmup, args.device, args.override, clock, **size
        )

    results = {}
    run(args.methods[0])  # process warm-up
    for method in args.methods:
        label = _unique_label(method, results)
        results[label] = run(method)
        print(f"{label}: {1000 * statistics.median(results[label]):.1f} ms/step", file=sys.stderr, flush=True)
    baseline = statistics.median(results[args.methods[0]])
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "CPU"
    inputs = preset_batch(PRESETS[args.preset], args.batch_size, args.resolution)["inputs"]
    batch_size, (height, width) = inputs.shape[0], inputs.shape[-2:]  # the size that was timed
    print(
        f"preset {args.preset} (batch {batch_size}, {height}×{width}) · {device} · {torch.get_num_threads()} "
        f"threads · {args.clock} clock · median of {args.steps} steps after {args.warmup} warm-up\n"
    )
    print(f"| method | ms/step | × {args.methods[0]} |\n| --- | ---: | ---: |")
    for method, times in results.items():
        median = statistics.median(times)
        print(f"| {method} | {1000 * median:.1f} | {median / baseline:.2f} |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "preset": args.preset,
                    "batch_size": batch_size,
                    "resolution": [height, width],
                    "device": device,
                    "times_s": results,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
