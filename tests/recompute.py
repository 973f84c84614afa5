"""A run's reported test metrics recomputed outside Lightning: the saved best checkpoint, a plain loop over
the test split, a fresh copy of each task's metrics. End-to-end tests compare this with results.json's
``test_at_best_val`` instead of checking that a percentage lies in [0, 100]."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from rw_mtl.build import build_module


def best_checkpoint_test_metrics(config: DictConfig) -> dict[str, dict[str, float]]:
    """task → metric → value of the model in ``<output_dir>/checkpoints/best.ckpt`` on the test split."""
    datamodule = instantiate(config.dataset.datamodule)
    datamodule.setup("test")
    module = build_module(config, datamodule.tasks, multi_input=getattr(datamodule, "multi_input", False))
    checkpoint = Path(config.paths.output_dir) / "checkpoints" / "best.ckpt"
    module.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"])
    module.eval()
    loaders = datamodule.test_dataloader()
    loaders = list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]
    metrics = {name: task.make_metrics() for name, task in module.tasks.items()}
    with torch.no_grad():
        for index, loader in enumerate(loaders):
            tasks = [module.task_names[index]] if module.multi_input else module.task_names
            for batch in loader:
                predictions = module(batch["inputs"], tasks)
                for name in tasks:
                    target = batch["targets"][name]
                    metrics[name].update(module.tasks[name].align(predictions[name], target), target)
    return {
        name: {k: v.item() for k, v in collection.compute().items()} for name, collection in metrics.items()
    }


def assert_reported_metrics_are_the_checkpoints(results: dict, config: DictConfig) -> None:
    """results.json's ``test_at_best_val`` equals ``best_checkpoint_test_metrics`` metric by metric."""
    reported = results["metrics"]["test_at_best_val"]
    recomputed = best_checkpoint_test_metrics(config)
    assert set(reported) == set(recomputed)
    for task, metrics in recomputed.items():
        assert reported[task] == pytest.approx(metrics, rel=1e-5, abs=1e-6), task
