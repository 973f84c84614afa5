"""Build the pieces of one run from its composed config: the data module, the architecture, the weighting
methods and the MTLModule that ties them together."""

from __future__ import annotations

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rw_mtl.choices import REP_GRAMS
from rw_mtl.data.files import DatasetError
from rw_mtl.module import MTLModule
from rw_mtl.tasks.base import Task
from rw_mtl.weighting.base import GradWeighting, LossWeighting
from rw_mtl.weighting.registry import CUSTOM_METHOD, NO_GRAD_METHOD, resolve


def build_loss_weighting(cfg: DictConfig, task_num: int) -> LossWeighting:
    """The loss method of ``cfg.weighting.loss`` (rw_mtl/conf/weighting/loss/<name>.yaml)."""
    return _build_method("loss", cfg.weighting.loss, task_num)


def build_grad_weighting(cfg: DictConfig, task_num: int) -> GradWeighting | None:
    """The gradient method of ``cfg.weighting.grad``, or None for ``weighting/grad=none``."""
    if cfg.weighting.grad.name == NO_GRAD_METHOD:
        return None
    return _build_method("grad", cfg.weighting.grad, task_num)


def method_identity(node: DictConfig) -> str:
    """How results.json and the report name a method: its config name, or a custom method's class path."""
    return node.get("target") if node.name == CUSTOM_METHOD else node.name


def _build_method(kind: str, node: DictConfig, task_num: int):
    cls = resolve(kind, node.name, node.get("target") if node.name == CUSTOM_METHOD else None)
    hparams = OmegaConf.to_container(node.hparams, resolve=True) if node.get("hparams") else {}
    try:
        return cls(task_num, **hparams)
    except TypeError as err:
        where = f"rw_mtl/conf/weighting/{kind}/{node.name}.yaml"
        raise ValueError(
            f"bad hparams {hparams} for {method_identity(node)!r} (weighting.{kind}.hparams, {where}): {err}"
        ) from err


def build_module(cfg: DictConfig, tasks: dict[str, Task], multi_input: bool = False) -> MTLModule:
    """Architecture (cfg.arch over the dataset's encoder and head) + weighting → MTLModule."""
    arch = instantiate(
        cfg.arch.model,
        task_outputs={name: task.num_outputs for name, task in tasks.items()},
        encoder=instantiate(cfg.dataset.encoder, _partial_=True),
        head=instantiate(cfg.dataset.head, _partial_=True),
    )
    scheduler = cfg.dataset.get("scheduler")
    return MTLModule(
        arch=arch,
        tasks=tasks,
        loss_weighting=build_loss_weighting(cfg, len(tasks)),
        grad_weighting=build_grad_weighting(cfg, len(tasks)),
        grad_mode=cfg.weighting.grad.mode,
        batched_jacobian=cfg.weighting.grad.batched_jacobian,
        rep_gram=cfg.weighting.grad.get("rep_gram", REP_GRAMS[0]),
        optimizer=instantiate(cfg.dataset.optimizer, _partial_=True),
        scheduler=instantiate(scheduler, _partial_=True) if scheduler else None,
        on_nonfinite=cfg.get("on_nonfinite", "raise"),
        max_skipped_fraction=cfg.get("max_skipped_fraction", 0.05),
        multi_input=multi_input,
    )


def build_datamodule(cfg: DictConfig):
    """The dataset's LightningDataModule; a missing or malformed dataset surfaces as its own DatasetError
    (path + prepare script) rather than wrapped in Hydra's instantiation error."""
    try:
        return instantiate(cfg.dataset.datamodule)
    except InstantiationException as err:
        if isinstance(err.__cause__, DatasetError):
            raise err.__cause__ from None
        raise
