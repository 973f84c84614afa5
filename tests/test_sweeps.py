"""The paper's sweeps: every job of every rw_mtl/conf/experiment composes into a valid config, and the dry run
lists exactly the grid each table needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rw_mtl.config_checks import validate_config
from rw_mtl.resources import CONFIG_DIR
from rw_mtl.sweep import expand, main
from rw_mtl.weighting.registry import GRAD_METHODS, LOSS_METHODS, NO_GRAD_METHOD

from .conftest import conf_options

ALL_METHODS = 15  # 6 loss methods incl. EW and RLW, 9 gradient methods incl. RGW


@pytest.mark.parametrize(
    ("experiment", "jobs_per_seed"),
    [
        ("table1", ALL_METHODS),
        ("table3", 2 * ALL_METHODS),
        ("table4", 5 * 10),
        ("table5", 4 * 2 * 2),
        ("table6", ALL_METHODS),
        ("table7", ALL_METHODS),
        ("table8", 2 * ALL_METHODS),
        ("fig1", 6),
        ("fig2", 2 * 3),
        ("litmus_all", len(LOSS_METHODS) + len(GRAD_METHODS)),
    ],
)
def test_every_job_composes_and_validates(experiment, jobs_per_seed):
    jobs = expand(experiment, ["seed=0"])
    assert len(jobs) == jobs_per_seed
    names = set()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for job in jobs:
            config = compose(
                config_name="config", overrides=[*job, "paths.output_dir=."], return_hydra_config=True
            )
            validate_config(config)
            names.add((config.dataset.name, config.arch.name, config.run_name))
    assert len(names) == jobs_per_seed, "two jobs would share a run directory"


def _swept(experiment: str, key: str) -> set[str]:
    return {dict(o.split("=", 1) for o in job[1:])[key] for job in expand(experiment, ["seed=0"])}


def test_the_extended_grids_list_every_registered_method():
    """table4_all is every loss method × every gradient method; litmus_all one row per method: a method
    registered in rw_mtl/weighting/registry.py but missing from these sweeps fails here."""
    assert _swept("table4_all", "weighting/loss") == set(LOSS_METHODS)
    assert _swept("table4_all", "weighting/grad") == {NO_GRAD_METHOD, *GRAD_METHODS}
    assert len(expand("table4_all", ["seed=0,1,2"])) == 3 * len(LOSS_METHODS) * (1 + len(GRAD_METHODS))
    assert _swept("litmus_all", "+method") == {*LOSS_METHODS, *GRAD_METHODS}


def test_table5_grid_and_fig1_samplers():
    table5 = {tuple(job[1:4]) for job in expand("table5", ["seed=0"])}
    assert ("arch=mtan", "weighting/loss=rlw", "weighting/grad=cagrad") in table5
    fig1 = expand("fig1", ["seed=0"])
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        configs = [compose(config_name="config", overrides=[*job, "paths.output_dir=."]) for job in fig1]
    samplers = {config.weighting.loss.hparams.get("distribution") for config in configs}
    assert samplers == {None, "normal", "uniform", "dirichlet", "bernoulli", "constrained_bernoulli"}


def test_every_experiment_is_covered():
    assert set(conf_options("experiment")) == {
        "table1",
        "table3",
        "table4",
        "table5",
        "table6",
        "table7",
        "table8",
        "fig1",
        "fig2",
        "table4_all",
        "litmus_all",
    }
    assert Path(CONFIG_DIR, "method").is_dir()


def test_dry_run_prints_and_validates_every_job(capsys):
    assert main(["table5", "seed=0,1"]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("32 jobs, each composed and validated")
    job = "python -m rw_mtl +experiment=table5 arch=mtan weighting/loss=rlw weighting/grad=cagrad seed=1"
    assert job in out
    with pytest.raises(SystemExit):
        main(["table2"])


def test_dry_run_fails_on_the_jobs_a_run_would_refuse(capsys):
    """Rep mode on MTAN, Cross-stitch and NDDR-CNN (no single shared representation), and a typo'd key."""
    assert main(["table5", "seed=0", "weighting.grad.mode=rep"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    mtan = lines.index(
        "#9: python -m rw_mtl +experiment=table5 arch=mtan weighting/loss=ew weighting/grad=cagrad seed=0 "
        "weighting.grad.mode=rep"
    )
    assert lines[mtan + 1].startswith("    invalid: ValueError: arch=mtan (MTAN) has no single shared")
    assert "set weighting.grad.mode=param" in lines[mtan + 1]
    assert out.strip().endswith("6 of 16 jobs invalid (above); nothing was run")  # 3 archs × {EW, RLW}+CAGrad
    assert main(["fig2", "seed=0", "weighting.grad.mdoe=rep"]) == 1
    assert "Could not override 'weighting.grad.mdoe'" in capsys.readouterr().out
