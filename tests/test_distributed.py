"""Data-parallel training (trainer=ddp): 2 gloo processes on CPU equal 1 process on the same global batch.

The reference trains in this process on batches of 2b; the two ranks train on b samples each, rank r
taking samples r, r+2, … of the same unshuffled order, so every step sees the same global batch. SGD keeps
the comparison sharp (Adam's normalisation would magnify float noise in near-zero gradients).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.multiprocessing as mp
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.plugins import TorchSyncBatchNorm
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader, DistributedSampler

from rw_mtl.build import build_datamodule, build_module
from rw_mtl.distributed import BalancedDDPStrategy, broadcast_buffers_
from rw_mtl.results import read_results
from tests.conftest import compose_config
from tests.datasets import tiny_dataset_overrides

GLOBAL_BATCH = 32
STEPS = 3

# (loss method, gradient method, mode): every synchronisation path of the step.
EQUAL_TO_ONE_PROCESS = [
    ("ew", "none", "param"),  # plain backward, averaged gradients
    ("rlw", "mgda_ub", "param"),  # random λ on every rank alike; G averaged over the ranks
    ("uw", "pcgrad", "rep"),  # learnable λ; Gram matrix summed over the ranks
    ("dwa", "cagrad", "rep"),
    ("imtl_l", "imtl_g", "param"),
    ("rlw", "rgw", "rep"),  # weights drawn without a Gram matrix
    ("ew", "rotograd", "rep"),  # not a Gram method: runs on the gathered G
    ("ew", "gradnorm", "last_layer"),  # G on the last shared layer only, then one backward
    ("uw", "fairgrad", "rep"),  # a solver on the summed Gram matrix
    ("rlw", "sdmgrad", "rep"),  # two extra batches a step: their cross-batch products summed over ranks
    ("ew", "modo", "param"),  # two extra batches a step, G averaged over the ranks
    # the step batch's halves as ξ₁, ξ₂. Rep mode: each rank pairs its own halves' samples, and with rank r
    # taking samples r, r + 2, … the pairs are one process's; param mode: each half's G averaged over ranks
    ("rlw", "sdmgrad:sampling=halves", "rep"),
    ("ew", "modo:sampling=halves", "param"),
    ("rlw", "moco", "param"),  # a direction from the tracked state Y (a buffer), no weights on G
    # TorchJD's methods: T×T solves on the summed Gram matrix (rep) or the averaged G (param)
    ("ew", "upgrad", "rep"),
    ("rlw", "dualproj", "param"),
    ("ew", "aligned_mtl", "rep"),
    ("uw", "nash_mtl", "rep"),
    ("ew", "config", "param"),
    ("ew", "krum", "rep"),
    ("dwa", "crmogm", "rep"),  # state: the smoothed weights
    ("ew", "pcd", "rep"),  # state: the moving average of squared norms
    ("ew", "trimmed_mean", "rep"),  # coordinate-wise: on the gathered G, each rank applies its columns
    # issue 11's loss-based methods
    ("gls", "none", "param"),
    ("stch", "pcgrad", "rep"),  # warm-up weights from the global losses
    ("famo", "none", "param"),  # the extra forward after the step: the ranks' mean losses
    ("rlw", "excess_mtl", "rep"),  # running AdaGrad state on the gathered per-sample gradients
    ("ew", "db_mtl", "param"),  # running average of the averaged G
    ("auto_lambda", "none", "param"),  # meta step: gradients and the difference averaged over the ranks
    ("forum", "none", "param"),  # meta step: every gradient and loss averaged, one subproblem
]
# FAMO's δ = log ℓ − log ℓ' subtracts two losses a step apart (ℓ ≈ 1, ℓ − ℓ' ≈ 1e-3): float32 leaves δ a
# relative 1e-4 of rounding, which the ranks' other summation order changes and Adam's normalised step on ξ
# keeps (measured: ξ differs by 7e-6 of its 1e-2 after 3 steps)
TOLERANCE = {("famo", "none", "param"): {"rtol": 2e-3, "atol": 1e-5}}
# GradDrop draws one uniform per column of G, and the gathered columns come in another sample order than
# one process's: the ranks must agree with each other, not with one process.
RANKS_AGREE = [("ew", "graddrop", "rep")]
CASES = EQUAL_TO_ONE_PROCESS + RANKS_AGREE


def _config(loss: str, grad: str, mode: str, batch_size: int):
    """``grad`` is a config name, optionally with hyperparameters: ``name:key=value,key=value``."""
    grad, _, hparams = grad.partition(":")
    return compose_config(
        [
            f"weighting/loss={loss}",
            f"weighting/grad={grad}",
            f"weighting.grad.mode={mode}",
            *(f"weighting.grad.hparams.{setting}" for setting in hparams.split(",") if setting),
            "dataset.datamodule.train_size=192",
            "dataset.datamodule.val_size=32",
            "dataset.datamodule.test_size=32",
            f"dataset.datamodule.batch_size={batch_size}",
            "dataset.encoder.width=8",
            "dataset.encoder.feature_dim=32",
            "dataset.encoder.norm=group",
            "dataset.head.hidden=16",
            "dataset.optimizer._target_=torch.optim.SGD",
            "dataset.optimizer.lr=0.1",
            "logger=none",
        ]
    )


def _build(case: tuple[str, str, str], devices: int):
    """The seeded datamodule and module of ``case`` on ``devices`` ranks: training batches of
    GLOBAL_BATCH / devices samples, unshuffled, rank r taking samples r, r + devices, …"""
    cfg = _config(*case, batch_size=GLOBAL_BATCH // devices)
    L.seed_everything(0)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    train = datamodule.splits["train"]
    rank = int(os.environ.get("RANK", 0))
    sampler = DistributedSampler(train, num_replicas=devices, rank=rank, shuffle=False)
    datamodule.train_dataloader = lambda: DataLoader(train, GLOBAL_BATCH // devices, sampler=sampler)
    return datamodule, build_module(cfg, datamodule.tasks)


def _cpu_trainer(devices: int, max_steps: int, **options) -> L.Trainer:
    """A quiet CPU Trainer for ``max_steps`` training steps on ``devices`` gloo ranks (no validation,
    no files)."""
    return L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=BalancedDDPStrategy(process_group_backend="gloo") if devices > 1 else "auto",
        max_steps=max_steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )


def _train(case: tuple[str, str, str], devices: int) -> dict[str, torch.Tensor]:
    """Train ``case`` for STEPS steps on ``devices`` ranks; the final parameters and buffers."""
    datamodule, module = _build(case, devices)
    trainer = _cpu_trainer(
        devices,
        STEPS,
        deterministic=True,
        use_distributed_sampler=False,  # Lightning's would shuffle the training data
    )
    L.seed_everything(0)  # where distributed set-up re-seeds, so that RLW draws the same weights
    trainer.fit(module, datamodule=datamodule)
    return {**_last_weights(module), **{n: v.detach().clone() for n, v in module.state_dict().items()}}


def _last_weights(module) -> dict[str, torch.Tensor]:
    """The last step's loss weights and gradient-method weights (every rank must have drawn/computed the
    same ones, not merely ended with the same averaged gradients)."""
    weights = {"weights/loss": module.last_loss_weights}
    if module.grad_weighting is not None and module.grad_weighting.last_weights is not None:
        weights["weights/grad"] = module.grad_weighting.last_weights
    return weights


# Multi-input data (one batch per task; Office-31 in miniature), Lightning's own shuffled distributed
# sampler, a BatchNorm ResNet: the ranks' parameters must agree (their BatchNorm statistics need not).
MULTI_INPUT_CASES = [("ew", "mgda_ub", "rep"), ("rlw", "rotograd", "rep"), ("uw", "pcgrad", "param")]


def _train_multi_input(case: tuple[str, str, str], data_overrides: list[str]) -> dict[str, torch.Tensor]:
    loss, grad, mode = case
    cfg = compose_config(
        [
            "dataset=office31",
            *data_overrides,
            "dataset.datamodule.batch_size=2",
            f"weighting/loss={loss}",
            f"weighting/grad={grad}",
            f"weighting.grad.mode={mode}",
            "weighting.grad.hparams.rotation_size=8" if grad == "rotograd" else "seed=0",
            "logger=none",
        ]
    )
    L.seed_everything(0)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule.tasks, multi_input=True)
    trainer = _cpu_trainer(devices=2, max_steps=2)
    trainer.fit(module, datamodule=datamodule)
    return {**_last_weights(module), **{n: p.detach().clone() for n, p in module.named_parameters()}}


def _rank_worker(rank: int, port: int, out_dir: str, data_overrides: list[str]) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE="2",
        NODE_RANK="0",
        LOCAL_RANK=str(rank),
        RANK=str(rank),
    )
    torch.set_num_threads(1)
    states = {"/".join(case): _train(case, devices=2) for case in CASES}
    for case in MULTI_INPUT_CASES:
        states["office31/" + "/".join(case)] = _train_multi_input(case, data_overrides)
    norm = torch.nn.BatchNorm1d(3)
    norm.running_mean.fill_(float(rank + 1))
    broadcast_buffers_(norm)
    states["broadcast"] = norm.state_dict()
    strategy = BalancedDDPStrategy()
    strategy.model = torch.nn.BatchNorm1d(3)
    torch.nn.init.constant_(strategy.model.weight, rank + 5.0)
    strategy.model.running_var.fill_(rank + 7.0)
    strategy.configure_ddp()
    states["set-up"] = strategy.model.state_dict()
    torch.save(states, Path(out_dir) / f"rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_rank_states(tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("ddp")
    office = tiny_dataset_overrides("office31", out_dir / "data")
    mp.start_processes(
        _rank_worker, args=(_free_port(), str(out_dir), office), nprocs=2, start_method="spawn"
    )
    return [torch.load(out_dir / f"rank{rank}.pt") for rank in range(2)]


@pytest.mark.parametrize("case", CASES, ids="/".join)
def test_ranks_hold_identical_models(two_rank_states, case):
    first, second = (states["/".join(case)] for states in two_rank_states)
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


@pytest.mark.parametrize("case", EQUAL_TO_ONE_PROCESS, ids="/".join)
def test_two_ranks_equal_one_process_on_the_global_batch(two_rank_states, case):
    reference = _train(case, devices=1)
    distributed = two_rank_states[0]["/".join(case)]
    tolerance = TOLERANCE.get(case, {"rtol": 1e-4, "atol": 1e-6})
    for name, value in reference.items():
        torch.testing.assert_close(
            distributed[name], value, **tolerance, msg=lambda m, name=name: f"{name}: {m}"
        )
    initial = _build(case, devices=1)[1].state_dict()
    assert any(not torch.equal(value, reference[name]) for name, value in initial.items())


@pytest.mark.parametrize("case", MULTI_INPUT_CASES, ids="/".join)
def test_multi_input_ranks_hold_identical_parameters(two_rank_states, case):
    first, second = (states["office31/" + "/".join(case)] for states in two_rank_states)
    assert "weights/grad" in first
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


def test_ranks_evaluate_with_rank_zero_buffers(two_rank_states):
    for states in two_rank_states:
        assert states["broadcast"]["running_mean"].tolist() == [1.0, 1.0, 1.0]


def test_ranks_start_from_rank_zero_parameters_and_buffers(two_rank_states):
    for states in two_rank_states:
        assert states["set-up"]["weight"].tolist() == [5.0] * 3
        assert states["set-up"]["running_var"].tolist() == [7.0] * 3


def test_stock_ddp_strategy_is_refused():
    """Lightning's own DDP would leave each rank weighting its own tasks: the module names the fix."""
    _, module = _build(("ew", "pcgrad", "param"), devices=1)
    module._trainer = SimpleNamespace(world_size=2, precision="32-true", strategy=DDPStrategy())
    with pytest.raises(ValueError, match="use trainer=ddp"):
        module.on_fit_start()


def test_sync_batchnorm_on_cpu_names_the_fix():
    strategy = BalancedDDPStrategy(accelerator=CPUAccelerator(), parallel_devices=[torch.device("cpu")] * 2)
    strategy._layer_sync = TorchSyncBatchNorm()
    with pytest.raises(ValueError, match="dataset.encoder.norm=group"):
        strategy.setup(None)


def test_cli_data_parallel_run_evaluates_every_test_sample_once(tmp_path):
    """`python -m rw_mtl trainer=ddp` on 2 CPU processes (Lightning launches rank 1): one results.json,
    whose test metrics equal a 1-device evaluation of the final checkpoint over an odd-sized test split
    (DistributedSampler's padding would count a sample twice)."""
    run_dir = tmp_path / "ddp"
    overrides = [
        "weighting/grad=pcgrad",
        "dataset.datamodule.train_size=256",
        "dataset.datamodule.val_size=63",
        "dataset.datamodule.test_size=63",
        "dataset.datamodule.batch_size=32",
        "dataset.encoder.width=8",
        "dataset.encoder.feature_dim=32",
        "dataset.encoder.norm=group",
        "trainer.max_epochs=2",
        "logger=none",
    ]
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.sync_batchnorm=false"]
    completed = subprocess.run(
        [sys.executable, "-m", "rw_mtl", *overrides, *ddp, f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = read_results(run_dir / "results.json")
    assert results["config"]["trainer"]["devices"] == 2

    cfg = compose_config(overrides)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule.tasks)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    module.load_state_dict(checkpoint["state_dict"])
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    trainer.test(module, datamodule=datamodule, verbose=False)
    assert module.epoch_metrics["test"] == results["metrics"]["test"]


def test_ddp_inside_a_local_multirun_is_refused_with_the_fix(tmp_path):
    """Lightning would re-run the whole sweep for every extra rank; the job fails at once, naming SLURM."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "rw_mtl",
            "-m",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.sync_batchnorm=false",
            "dataset.datamodule.train_size=64",
            "logger=none",
            f"hydra.sweep.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode != 0
    assert "hydra.launcher.tasks_per_node=<devices>" in completed.stderr
    (failed,) = tmp_path.rglob("failed.json")
    assert "local Hydra multirun" in read_results(failed)["error"]
