"""The training step stalls no device: steps that do not log make zero host synchronisations, a logging
step at most one.

On CPU the profiler shows a synchronisation as ``aten::_local_scalar_dense`` (what ``.item()``,
``bool(tensor)``, ``float(tensor)`` run). Those made from Python — our code or Lightning's — would stall
a GPU; those an ATen kernel makes inside itself on CPU (the CPU fused Adam reading its step counter, the
CPU LAPACK wrappers) are host-memory reads of that CPU implementation, absent from the CUDA kernels, so
they are not counted. Ops that synchronise on CUDA whatever the device they are profiled on (``nonzero``,
``masked_select``, ``unique``: data-dependent output sizes) are counted wherever they run."""

from __future__ import annotations

import lightning as L
import pytest
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from torch.profiler import ProfilerActivity, profile, record_function

from rw_mtl.build import build_module

from .conftest import FAST

SCALAR_READ = "aten::_local_scalar_dense"
PYTHON_READS = {"aten::item", "aten::is_nonzero"}  # .item(), float(t); bool(t)
DATA_DEPENDENT_SHAPES = {"aten::nonzero", "aten::masked_select", "aten::_unique2", "aten::unique_dim"}
SMALL = [*FAST, "dataset.datamodule.train_size=512"]


class ProfileSteps(Callback):
    """Profile training batches ``first`` … ``last`` (the first step builds optimizer state once)."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last, self.profiler = first, last, None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.first:
            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.profiler.__enter__()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.last:
            self.profiler.__exit__(None, None, None)


def _profiled_run(config, first: int, last: int, log_every: int) -> tuple:
    datamodule = instantiate(config.dataset.datamodule)
    module = build_module(config, datamodule.tasks)
    step = module.training_step

    def scoped(batch, batch_idx):
        with record_function("rw_mtl.training_step"):
            return step(batch, batch_idx)

    module.training_step = scoped
    probe = ProfileSteps(first, last)
    trainer = L.Trainer(
        max_steps=last + 1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=log_every,
        callbacks=[probe],
    )
    trainer.fit(module, datamodule=datamodule)
    return probe.profiler.events(), module


def host_syncs(events) -> list:
    """The events that would synchronise a GPU (module docstring)."""
    found = []
    for event in events:
        if event.name in DATA_DEPENDENT_SHAPES:
            found.append(event)
        elif event.name == SCALAR_READ:
            parent = event.cpu_parent
            while parent is not None and parent.name in PYTHON_READS:
                parent = parent.cpu_parent
            if parent is None or not parent.name.startswith("aten::"):
                found.append(event)
    return found


def _syncs_inside_steps(events) -> list[int]:
    """The number of host syncs that ran inside each of our training steps."""
    steps = [e for e in events if e.name == "rw_mtl.training_step"]
    syncs = host_syncs(events)
    return [
        sum(1 for s in syncs if step.time_range.start <= s.time_range.start <= step.time_range.end)
        for step in steps
    ]


ONE_EXTRA_PASS = ["dataset.datamodule.train_size=1024"]
CASES = {
    "ew": ["weighting/loss=ew"],
    "rlw": ["weighting/loss=rlw"],
    "rlw+rgw(rep)": ["weighting/loss=rlw", "weighting/grad=rgw"],
    "ew+mgda_ub(rep)": ["weighting/loss=ew", "weighting/grad=mgda_ub"],
    "uw+pcgrad(param)": ["weighting/loss=uw", "weighting/grad=pcgrad"],
    "dwa+cagrad(param)": ["weighting/loss=dwa", "weighting/grad=cagrad"],
    "ew+gradvac(param)": ["weighting/loss=ew", "weighting/grad=gradvac"],
    "ew+fairgrad(param)": ["weighting/loss=ew", "weighting/grad=fairgrad"],
    "uw+moco(param)": ["weighting/loss=uw", "weighting/grad=moco"],
    # Two extra training batches a step: each new pass of that loader (every train_size / 128 steps) reads
    # two CPU seeds with .item() in torch's DataLoader, as Lightning's loop does at every epoch; a CPU
    # scalar, no device sync, but indistinguishable here: the profiled steps stay within one pass.
    "rlw+sdmgrad(rep)": [
        *ONE_EXTRA_PASS,
        "weighting/loss=rlw",
        "weighting/grad=sdmgrad",
        "weighting.grad.mode=rep",
    ],
    "ew+modo(param)": [*ONE_EXTRA_PASS, "weighting/loss=ew", "weighting/grad=modo"],
    # the device solvers: interior-point QP, SVD, Newton (tests/test_torchjd_training.py: every method)
    "ew+upgrad(param)": ["weighting/loss=ew", "weighting/grad=upgrad"],
    "uw+nash_mtl(rep)": ["weighting/loss=uw", "weighting/grad=nash_mtl", "weighting.grad.mode=rep"],
    "ew+aligned_mtl(rep)": ["weighting/loss=ew", "weighting/grad=aligned_mtl", "weighting.grad.mode=rep"],
}


# issue 11's loss-based methods, under skip (its device-side state restore is the longer path): meta steps
# on validation batches, FAMO's extra forward after the step, running [T, D] state, the on-device QP
# a meta step draws validation batches; restarting that loader draws its base seed with .item() on a CPU
# tensor (torch's DataLoader), no device sync: enough batches that steps 1–3 do not restart it
ENOUGH_VALIDATION = ["dataset.datamodule.val_size=1024"]
NEW_CASES = {
    "gls": ["weighting/loss=gls"],
    "stch+pcgrad(param)": [
        "weighting/loss=stch",
        "weighting.loss.hparams.warmup_epoch=0",
        "weighting/grad=pcgrad",
    ],
    "famo": ["weighting/loss=famo"],
    "ew+excess_mtl(rep)": ["weighting/grad=excess_mtl", "weighting.grad.mode=rep"],
    "ew+db_mtl(param)": ["weighting/grad=db_mtl"],
    "auto_lambda": ["weighting/loss=auto_lambda", *ENOUGH_VALIDATION],
    "forum": ["weighting/loss=forum", "weighting.loss.hparams.inner_steps=2", *ENOUGH_VALIDATION],
}


@pytest.mark.parametrize("policy", ["raise", "skip"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_steps_that_do_not_log_make_no_host_sync(fast_config, case, policy):
    config = fast_config(*SMALL, *CASES[case], f"on_nonfinite={policy}")
    events, _ = _profiled_run(config, first=1, last=4, log_every=1000)  # no step of these logs
    syncs = [(e.name, e.cpu_parent.name if e.cpu_parent else None) for e in host_syncs(events)]
    assert syncs == [], syncs


@pytest.mark.parametrize("case", sorted(NEW_CASES))
def test_new_loss_based_methods_make_no_host_sync(fast_config, case):
    config = fast_config(*SMALL, *NEW_CASES[case], "on_nonfinite=skip")
    events, _ = _profiled_run(config, first=1, last=3, log_every=1000)
    syncs = [(e.name, e.cpu_parent.name if e.cpu_parent else None) for e in host_syncs(events)]
    assert syncs == [], syncs


def test_a_logging_step_transfers_once_and_checks_the_guard(fast_config):
    """Logging steps (every 2nd here) move the logged values and the guard's flags in one transfer: no
    item() inside the step (Lightning later reads the already-copied host values)."""
    config = fast_config(*SMALL, "weighting/loss=rlw", "weighting/grad=rgw", "on_nonfinite=raise")
    events, module = _profiled_run(config, first=1, last=4, log_every=2)
    assert _syncs_inside_steps(events) == [0, 0, 0, 0]
    assert module.trainer.logged_metrics["train/loss_weight/digit0"].device.type == "cpu"


def test_skip_without_device_side_support_costs_one_sync_per_step(fast_config):
    """An optimizer that cannot withhold an update on the device (plain Adam) makes skip read the verdict
    on the host: exactly one sync per step more than the same run under raise — the documented price.
    (Plain Adam's own scalar reads are of CPU tensors, no GPU sync, but on CPU they look alike; hence the
    difference.)"""
    counts = {}
    for policy in ("raise", "skip"):
        config = fast_config(
            *SMALL, "weighting/loss=ew", f"on_nonfinite={policy}", "dataset.optimizer.fused=false"
        )
        events, _ = _profiled_run(config, first=1, last=4, log_every=1000)
        counts[policy] = _syncs_inside_steps(events)
    assert [s - r for s, r in zip(counts["skip"], counts["raise"], strict=True)] == [1, 1, 1, 1]
