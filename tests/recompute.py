"""A run's reported test metrics recomputed outside Lightning: the saved best checkpoint, a plain loop over
the test split, a fresh copy of each task's metrics. End-to-end tests compare this with results.json's
``test_at_best_val`` instead of checking that a percentage lies in [0, 100]."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import DictConfig

from rw_mtl.build import build_datamodule, build_module


def best_checkpoint_test_metrics(config: DictConfig) -> dict[str, dict[str, float]]:
    """task → metric → value of the model in ``<output_dir>/checkpoints/best.ckpt`` on the test split."""
    checkpoint = Path(config.paths.output_dir) / "checkpoints" / "best.ckpt"
    return split_metrics(config, torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"])


def untrained_metrics(config: DictConfig, split: str = "test") -> dict[str, dict[str, float]]:
    """task → metric → value on ``split`` of the model ``run(config)`` starts from: seeded and built in
    rw_mtl/train.py's order (seed, data module, module), evaluated before any step — the baseline a
    trained run must beat."""
    L.seed_everything(config.seed, workers=True)
    return split_metrics(config, None, split)


def split_metrics(
    config: DictConfig, state_dict: dict | None, split: str = "test"
) -> dict[str, dict[str, float]]:
    """task → metric → value of ``config``'s model holding ``state_dict`` (None: as built) on ``split``."""
    datamodule = build_datamodule(config)
    module = build_module(config, datamodule.tasks, multi_input=getattr(datamodule, "multi_input", False))
    if state_dict is not None:
        module.load_state_dict(state_dict)
    datamodule.setup("test" if split == "test" else "fit")
    module.eval()
    loaders = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
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


def accuracy_gains(
    metrics: dict[str, dict[str, float]], untrained: dict[str, dict[str, float]]
) -> list[float]:
    """Per task, the accuracy points ``metrics`` gained over ``untrained`` (``untrained_metrics``)."""
    return [metrics[task]["acc"] - untrained[task]["acc"] for task in untrained]


def assert_beats_untrained(
    metrics: dict[str, dict[str, float]],
    untrained: dict[str, dict[str, float]],
    mean: float,
    task: float | None,
) -> None:
    """The accuracy gains of ``metrics`` over ``untrained``: their mean over the tasks exceeds ``mean``
    points and (unless ``task`` is None) each task's exceeds ``task``."""
    gains = accuracy_gains(metrics, untrained)
    assert sum(gains) / len(gains) > mean, gains
    assert task is None or min(gains) > task, gains
