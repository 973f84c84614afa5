"""No job of any paper sweep fails by construction: every job of every rw_mtl/conf/experiment sweep is
composed, and one real optimizer step of each distinct (dataset kind × architecture × loss method × gradient
method × mode) runs on the tiny copies of the benchmarks in their official formats (tests/datasets.py).

The jobs come from ``rw_mtl.sweep.expand``, exactly as ``make tableN`` runs them; a job differs from one
already run only by its seed, its dataset's sibling of the same kind (CityScapes beside NYUv2, Office-Home
beside Office-31) or its validation source. The one-step runs take minutes on CPU, so they are marked
``slow`` (``pytest -m slow``), and since collecting them composes every job (half a minute), the default
run does not even import this file (tests/conftest.py); composing every job with its checks stays in the
default suite (tests/test_sweeps.py).
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rw_mtl.build import build_datamodule, build_module
from rw_mtl.resources import CONFIG_DIR
from rw_mtl.sweep import expand

from .conftest import conf_options, fit_one_step
from .datasets import tiny_dataset_overrides

# the code path a dataset takes: its data module, task kinds, inputs (one batch per task or shared)
DATASET_KINDS = {
    "nyuv2": "dense",
    "cityscapes": "dense",
    "celeba": "celeba",
    "office31": "office",
    "office_home": "office",
    "xtreme_pi": "pawsx",
    "xtreme_pos": "udpos",
}
# the smallest sizes at which every architecture still builds on the tiny fixtures
TINY_OVERRIDES = {
    "dense": ["dataset.datamodule.val_fraction=0.5"],  # MOML and Fig. 2 on 4 images: a seeded split
    "celeba": ["dataset.encoder.name=resnet18", "dataset.encoder.pretrained=false"],
    "office": [],
    "pawsx": [],
    "udpos": [],
}


def _identity(config) -> tuple:
    """What makes two jobs run different code: all but the seed, the sibling dataset and the run name."""
    weighting = OmegaConf.to_container(config.weighting, resolve=True)
    return (
        DATASET_KINDS[config.dataset.name],
        config.arch.name,
        repr(weighting["loss"]),
        repr(weighting["grad"]),
    )


# the sweeps that reproduce the paper; table4_all and litmus_all go beyond it (every method of the registry,
# on NYUv2 and the embedded multi_digits data), and tests/test_train.py trains each of those methods
PAPER_SWEEPS = ("table1", "table3", "table4", "table5", "table6", "table7", "table8", "fig1", "fig2")


def _distinct_jobs() -> list[tuple[str, list[str]]]:
    """(id, overrides) of the first job of every distinct combination over all paper sweeps."""
    sweeps = [job for experiment in PAPER_SWEEPS for job in expand(experiment, ["seed=0"])]
    seen, jobs = set(), []
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for job in sweeps:
            config = compose(config_name="config", overrides=[*job, "paths.output_dir=."])
            key = _identity(config)
            if key in seen:
                continue
            seen.add(key)
            loss, grad = config.weighting.loss, config.weighting.grad
            sampler = f"_{loss.hparams.distribution}" if loss.name == "rlw" else ""
            jobs.append((f"{key[0]}-{config.arch.name}-{loss.name}{sampler}-{grad.name}-{grad.mode}", job))
    return jobs


JOBS = _distinct_jobs()
pytestmark = pytest.mark.slow


def test_the_paper_sweeps_are_every_sweep_but_the_ones_beyond_the_paper():
    assert sorted(PAPER_SWEEPS) == sorted(set(conf_options("experiment")) - {"table4_all", "litmus_all"})


def test_the_distinct_jobs_cover_every_method_on_every_kind():
    """The deduplication keeps every method on every dataset kind of its sweeps (15 per single-model table,
    Table 4's 5 × 10 grid and Table 5's architectures on NYUv2's kind, Fig. 1's samplers)."""
    names = [name for name, _ in JOBS]
    assert len(names) == len(set(names))
    by_kind = {kind: [n for n in names if n.startswith(kind + "-")] for kind in set(DATASET_KINDS.values())}
    assert {kind: len(found) for kind, found in by_kind.items()} == {
        "dense": 50 + 1 + 3 * 4 + 4,  # Table 4, MOML, Table 5 beyond HPS, Fig. 1's other samplers
        "celeba": 15 + 1,  # Fig. 2's c-Bernoulli RLW
        "office": 15,
        "pawsx": 15,
        "udpos": 15,
    }
    assert "office-hps-ew-graddrop-rep" in names and "pawsx-hps-ew-graddrop-rep" in names


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Overrides per dataset name, each tiny benchmark written once for the module."""
    root = tmp_path_factory.mktemp("protocol_data")
    cache: dict[str, list[str]] = {}

    def overrides(dataset: str) -> list[str]:
        if dataset not in cache:
            cache[dataset] = tiny_dataset_overrides(dataset, root / dataset)
        return cache[dataset]

    return overrides


@pytest.mark.parametrize(("name", "job"), JOBS, ids=[name for name, _ in JOBS])
def test_one_step_of_every_distinct_job(name, job, tiny_data, tmp_path):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        dataset = compose(config_name="config", overrides=[*job, "paths.output_dir=."]).dataset.name
        config = compose(
            config_name="config",
            overrides=[
                *job,
                *tiny_data(dataset),
                *TINY_OVERRIDES[DATASET_KINDS[dataset]],
                "dataset.optimizer.fused=false",
                f"paths.output_dir={tmp_path}",
            ],
        )
    L.seed_everything(0)
    datamodule = build_datamodule(config)
    module = build_module(config, datamodule.tasks, multi_input=getattr(datamodule, "multi_input", False))
    before = [p.detach().clone() for p in module.shared_parameters()]
    fit_one_step(module, datamodule)
    after = module.shared_parameters()
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(b, a.detach()) for b, a in zip(before, after, strict=True)), "θ did not move"
