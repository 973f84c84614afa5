"""Hydra entry point: compose the config → build data, model and weighting → fit → test → results.json.

``python -m rw_mtl [overrides]`` (or ``rw-mtl``); e.g. ``python -m rw_mtl weighting/loss=rlw
weighting/grad=cagrad``. ``run(cfg)`` does the work and can be called with any composed config.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rw_mtl.console import format_metrics, print_config_tree
from rw_mtl.resources import CONFIG_DIR
from rw_mtl.results import RESULTS_FILE, write_json_atomic
from rw_mtl.run_dir import (
    CHECKPOINT_DIR,
    FAILED_FILE,
    RunClaim,
    RunDirRefused,
    claim_output_dir,
    resume_checkpoint,
)
from rw_mtl.scores import check_objective, ew_reference, objective, run_scores
from rw_mtl.termination import TerminationGuard, stop_on_sigterm

if TYPE_CHECKING:  # Lightning, torch and the model code are imported in run(): --help and --cfg start fast
    import lightning as L

log = logging.getLogger(__name__)


def refuse_relaunch_in_multirun(trainer: L.Trainer) -> None:
    """Lightning starts a multi-device run's other ranks by re-running the command line, which inside a
    local Hydra multirun would start the whole sweep again in every child: refuse, naming what works."""
    if trainer.world_size == 1 or trainer.strategy.cluster_environment.creates_processes_externally:
        return
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ValueError(
            "trainer=ddp with several devices cannot run inside a local Hydra multirun (Lightning would "
            "re-run the whole sweep for every extra rank); run each job as a single `python -m rw_mtl …`, or "
            "on SLURM use hydra/launcher=slurm hydra.launcher.tasks_per_node=<devices> "
            "hydra.launcher.gpus_per_node=<devices> (one SLURM task per rank)"
        )


def run(cfg: DictConfig, record_failure: bool = False) -> dict:
    """Train and test one configuration; write and return its results.json payload.

    ``record_failure`` (the command line's): an error after the directory was claimed leaves failed.json
    (error and traceback) there, written while the directory is still held, so never into a run that
    took the directory over; a process refused the directory writes nothing into it.
    """
    from lightning.pytorch.utilities import rank_zero_only

    from rw_mtl.config_checks import validate_config
    from rw_mtl.quiet import silence_library_noise

    silence_library_noise()
    validate_config(cfg)
    check_objective(cfg)
    primary = rank_zero_only.rank == 0  # data-parallel ranks > 0 run this script too (trainer=ddp)
    if cfg.get("print_config") and primary:
        print_config_tree(cfg, HydraConfig.get().runtime.choices if HydraConfig.initialized() else None)
    output_dir = Path(cfg.paths.output_dir)
    with stop_on_sigterm(str(output_dir)) as guard, claim_output_dir(cfg, output_dir, lock=primary) as claim:
        if claim.finished is not None:
            log.info("skipping: %s already holds results of this exact config", output_dir / RESULTS_FILE)
            print(format_metrics(claim.finished), flush=True)
            return claim.finished
        try:
            return _train(cfg, claim, guard, primary)
        except Exception as err:
            if record_failure and primary and not isinstance(err, RunDirRefused):
                _record_failure(output_dir, err)
            raise


def free_finished_run() -> None:
    """Free the finished run's model, optimizer state and trainer now. They hold each other in reference
    cycles (Lightning's trainer ↔ module), which only Python's cyclic collector frees, and it runs on object
    counts, not on memory: in a sweep (the jobs of a local Hydra multirun share one process) every finished
    job's model stayed in memory — on the GPU too — next to the following job's. ``main`` calls it after
    every job. ``run`` leaves it to its caller: a full collection costs 0.3 s and more as the process's
    objects grow, which made the test suite (``run`` in one process, test after test) minutes slower."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _record_failure(output_dir: Path, err: Exception) -> None:
    """failed.json: the error and its traceback. Never masks the error itself: if failed.json cannot be
    written either (a full disk), that is only logged."""
    failure = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    try:
        write_json_atomic(output_dir / FAILED_FILE, failure)
    except OSError as write_error:
        log.warning("could not write %s: %s", output_dir / FAILED_FILE, write_error)


def _train(cfg: DictConfig, claim: RunClaim, guard: TerminationGuard, primary: bool) -> dict:
    """``run`` in a directory this process holds: build, fit, test, write results.json."""
    import lightning as L
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import ProgressBar

    from rw_mtl.build import build_datamodule, build_module, method_identity
    from rw_mtl.checkpoints import AtomicCheckpointIO, RunCheckpoint
    from rw_mtl.instantiators import instantiate_callbacks, instantiate_loggers
    from rw_mtl.wandb_run import summarize_and_finish

    output_dir = claim.output_dir
    started = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    if primary:
        claim.record_config()
        claim.write_hydra_files()
    module = build_module(cfg, datamodule.tasks, multi_input=getattr(datamodule, "multi_input", False))
    loggers = instantiate_loggers(cfg)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    checkpoint = RunCheckpoint(output_dir / CHECKPOINT_DIR)
    callbacks = [checkpoint, *instantiate_callbacks(cfg)]
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=any(isinstance(callback, ProgressBar) for callback in callbacks),
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(output_dir),
    )

    refuse_relaunch_in_multirun(trainer)
    with guard.stop_at_a_step():
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg, output_dir))
    # before a checkpoint is loaded for testing (loading restores the checkpoint's history and counts)
    val_history, skipped_steps = list(module.val_history), module.skipped_steps
    with guard.stop_at_a_step():
        trainer.test(module, datamodule=datamodule, verbose=False)
    final_test = module.epoch_metrics["test"]
    best = max(val_history, key=lambda entry: entry["score"]) if val_history else None
    best_test = final_test
    if checkpoint.best_model_path:
        with guard.stop_at_a_step():
            trainer.test(module, datamodule=datamodule, ckpt_path=checkpoint.best_model_path, verbose=False)
        best_test = module.epoch_metrics["test"]

    results = {
        "dataset": cfg.dataset.name,
        "arch": cfg.arch.name,
        "loss_method": method_identity(cfg.weighting.loss),
        "grad_method": method_identity(cfg.weighting.grad),
        "grad_mode": cfg.weighting.grad.mode,
        "seed": cfg.seed,
        "tasks": {name: dict(task.higher_is_better) for name, task in datamodule.tasks.items()},
        "metrics": {
            "test": final_test,
            "test_at_best_val": best_test,
            "val_at_best": best["metrics"] if best else None,
        },
        "best_epoch": best["epoch"] if best else None,
        "val_history": val_history,
        "epochs": trainer.current_epoch,
        "skipped_steps": skipped_steps,
        "wall_time_s": time.perf_counter() - started,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if not trainer.is_global_zero:
        return results
    write_json_atomic(output_dir / RESULTS_FILE, results)
    (output_dir / FAILED_FILE).unlink(missing_ok=True)  # an earlier attempt's, now resumed to the end
    reference = ew_reference(cfg.get("ew_reference"), cfg.dataset.name)
    summarize_and_finish(loggers, {**_flat_summary(results), **run_scores(results, reference)})
    log.info("wrote %s", output_dir / RESULTS_FILE)
    print(format_metrics(results), flush=True)
    return results


def _flat_summary(results: dict) -> dict[str, float]:
    """``split/task/metric`` → value for the W&B run summary (what its dashboards compare)."""
    flat = {
        f"{split}/{task}/{metric}": value
        for split, tasks in results["metrics"].items()
        if tasks
        for task, metrics in tasks.items()
        for metric, value in metrics.items()
    }
    flat["best_epoch"] = results["best_epoch"]
    return flat


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    """Console script ``rw-mtl``; returns what a Hydra sweeper maximises (rw_mtl.scores.objective: the
    best validation score, or ``optimized_metric``, Δp against EW in hparams_search). A failing job
    leaves failed.json in its directory (``run``) and re-raises, so Hydra records it and a sweep goes on
    with the next job."""
    try:
        return objective(cfg, run(cfg, record_failure=True))
    finally:
        free_finished_run()
