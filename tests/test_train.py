"""Full short training runs through ``run(cfg)`` and the ``python -m rw_mtl`` entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rw_mtl.train import run

from .conftest import FAST

WEIGHTINGS = {
    "ew": ["weighting/loss=ew"],
    "rlw-normal": ["weighting/loss=rlw"],
    "rlw-uniform": ["weighting/loss=rlw", "weighting.loss.hparams.distribution=uniform"],
    "rlw-dirichlet": ["weighting/loss=rlw", "weighting.loss.hparams.distribution=dirichlet"],
    "rlw-bernoulli": ["weighting/loss=rlw", "weighting.loss.hparams.distribution=bernoulli"],
    "rlw-c-bernoulli": ["weighting/loss=rlw", "weighting.loss.hparams.distribution=constrained_bernoulli"],
    "ew+rgw": ["weighting/loss=ew", "weighting/grad=rgw"],
    "ew+rgw-param": ["weighting/loss=ew", "weighting/grad=rgw", "weighting.grad.mode=param"],
    "rlw+rgw": ["weighting/loss=rlw", "weighting/grad=rgw"],
    "uw": ["weighting/loss=uw"],
    "dwa": ["weighting/loss=dwa", "trainer.max_epochs=3"],
    "imtl_l": ["weighting/loss=imtl_l"],
    "moml": ["weighting/loss=moml"],
    "mgda_ub": ["weighting/grad=mgda_ub"],
    "gradnorm": ["weighting/grad=gradnorm"],
    "pcgrad": ["weighting/grad=pcgrad"],
    "graddrop": ["weighting/grad=graddrop"],
    "imtl_g": ["weighting/grad=imtl_g"],
    "gradvac": ["weighting/grad=gradvac"],
    "cagrad": ["weighting/grad=cagrad"],
    "rotograd": ["weighting/grad=rotograd"],
    "fairgrad": ["weighting/grad=fairgrad"],
    "sdmgrad-rep": ["weighting/grad=sdmgrad", "weighting.grad.mode=rep"],
    "modo": ["weighting/grad=modo"],
    "moco": ["weighting/grad=moco"],
    # Table 4: any loss method with any gradient method
    "rlw+cagrad": ["weighting/loss=rlw", "weighting/grad=cagrad"],
    "uw+pcgrad": ["weighting/loss=uw", "weighting/grad=pcgrad"],
    "dwa+mgda_ub": ["weighting/loss=dwa", "weighting/grad=mgda_ub"],
    "imtl_l+imtl_g": ["weighting/loss=imtl_l", "weighting/grad=imtl_g"],
    # issue 11's loss-based methods, alone and in the grid
    "gls": ["weighting/loss=gls"],
    "stch": ["weighting/loss=stch", "weighting.loss.hparams.warmup_epoch=0"],  # epoch 1 past the warm-up
    "famo": ["weighting/loss=famo"],
    "excess_mtl": ["weighting/grad=excess_mtl"],
    "db_mtl": ["weighting/grad=db_mtl"],
    "auto_lambda": ["weighting/loss=auto_lambda"],
    "forum": ["weighting/loss=forum", "weighting.loss.hparams.inner_steps=2"],  # 9 → 5 backward passes
    "famo+pcgrad": ["weighting/loss=famo", "weighting/grad=pcgrad"],
}


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_short_run_learns_and_writes_results(fast_config, name):
    config = fast_config(*WEIGHTINGS[name])
    results = run(config)

    written = json.loads((Path(config.paths.output_dir) / "results.json").read_text())
    assert written == json.loads(json.dumps(results))
    assert written["dataset"] == "multi_digits" and written["arch"] == "hps"
    assert written["loss_method"] == config.weighting.loss.name
    assert written["grad_method"] == config.weighting.grad.name
    epochs = config.trainer.max_epochs
    assert written["seed"] == 0 and written["epochs"] == epochs and written["wall_time_s"] > 0
    assert written["config"]["weighting"]["loss"]["name"] == config.weighting.loss.name
    assert [entry["epoch"] for entry in written["val_history"]] == list(range(epochs))
    assert written["best_epoch"] in range(epochs)
    assert set(written["tasks"]) == {"digit0", "digit1", "digit2"}
    for split in ("test", "test_at_best_val", "val_at_best"):
        accuracies = [written["metrics"][split][task]["acc"] for task in ("digit0", "digit1", "digit2")]
        # 10 classes: chance is 10%. Two short epochs learn well above it, even c-Bernoulli, which trains
        # one task per step and is the slowest (Section 5.4).
        assert sum(accuracies) / 3 > 18.0, (split, accuracies)


def test_ew_learns_the_tasks(fast_config):
    results = run(fast_config("weighting/loss=ew"))
    accuracies = [metrics["acc"] for metrics in results["metrics"]["test"].values()]
    assert sum(accuracies) / 3 > 45.0, accuracies
    assert results["val_history"][1]["score"] > results["val_history"][0]["score"]


def test_same_seed_same_metrics(fast_config):
    first = run(fast_config("weighting/loss=rlw", run="a"))
    second = run(fast_config("weighting/loss=rlw", run="b"))
    assert first["metrics"] == second["metrics"]
    assert first["val_history"] == second["val_history"]


def test_cli_writes_results_in_hydra_run_dir(tmp_path):
    run_dir = tmp_path / "cli"
    completed = subprocess.run(
        [sys.executable, "-m", "rw_mtl", *FAST, "weighting/loss=ew", f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["loss_method"] == "ew"
    assert "digit0" in completed.stdout and "test@best-val" in completed.stdout


def test_cli_wrong_choice_lists_valid_options(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "rw_mtl", "weighting/loss=nope", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode != 0
    assert "Could not find 'weighting/loss/nope'" in completed.stderr
    assert "Available options in 'weighting/loss'" in completed.stderr
    assert "rlw" in completed.stderr and "ew" in completed.stderr


BF16_RUNS = {
    "mgda_ub-param": ["weighting/grad=mgda_ub", "weighting.grad.mode=param"],
    "cagrad-rep": ["weighting/grad=cagrad", "weighting.grad.mode=rep"],
    "fairgrad-rep": ["weighting/grad=fairgrad", "weighting.grad.mode=rep"],
    "modo-param": ["weighting/grad=modo"],
}


@pytest.mark.parametrize("name", sorted(BF16_RUNS))
def test_bf16_mixed_gradient_methods_learn_as_in_float32(fast_config, name):
    """bf16-mixed autocast runs the model in bfloat16, but G and the method's Gram/simplex algebra stay in
    float32 (a bf16 Gram matrix cannot even be solved on CPU): the run learns as well as in float32."""
    bf16 = run(fast_config(*BF16_RUNS[name], "trainer.precision=bf16-mixed", run="bf16"))
    fp32 = run(fast_config(*BF16_RUNS[name], run="fp32"))
    mean = {
        label: sum(m["acc"] for m in results["metrics"]["test"].values()) / 3
        for label, results in (("bf16", bf16), ("fp32", fp32))
    }
    # both learn (chance is 10 %) and bf16 is at most 8 points below float32 of the same config and seed
    assert min(mean.values()) > 20.0 and mean["bf16"] > mean["fp32"] - 8.0, mean
