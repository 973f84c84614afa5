"""Checks of a composed config that fail before anything is built or written, naming the key to change."""

from __future__ import annotations

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from rw_mtl.choices import GRAD_MODES, NONFINITE_POLICIES, REP_GRAMS, check_precision, check_rep_gram
from rw_mtl.data.validation import HELD_OUT, TEST, VALIDATION_KEY
from rw_mtl.weighting.interface import DIRECTION
from rw_mtl.weighting.registry import CUSTOM_METHOD, NO_GRAD_METHOD, resolve

REQUIRED_KEYS = {
    "dataset.name": "rw_mtl/conf/dataset/<name>.yaml",
    "dataset.datamodule": "rw_mtl/conf/dataset/<name>.yaml",
    "dataset.encoder": "rw_mtl/conf/dataset/<name>.yaml",
    "dataset.head": "rw_mtl/conf/dataset/<name>.yaml",
    "dataset.optimizer": "rw_mtl/conf/dataset/<name>.yaml",
    "arch.name": "rw_mtl/conf/arch/<name>.yaml",
    "arch.model": "rw_mtl/conf/arch/<name>.yaml",
    "weighting.loss.name": "rw_mtl/conf/weighting/loss/<name>.yaml",
    "weighting.grad.name": "rw_mtl/conf/weighting/grad/<name>.yaml",
    "weighting.grad.mode": "rw_mtl/conf/weighting/grad/<name>.yaml",
    "trainer": "rw_mtl/conf/trainer/<name>.yaml",
    "seed": "rw_mtl/conf/config.yaml",
}


def validate_config(cfg: DictConfig) -> None:
    """Fail before anything is built or written: missing keys, unknown names, incompatible choices."""
    for key, where in REQUIRED_KEYS.items():
        if OmegaConf.select(cfg, key, throw_on_missing=False) is None:
            raise ValueError(
                f"missing config key `{key}`: set it in {where} or on the command line ({key}=...)"
            )
    for kind in ("loss", "grad"):
        node = cfg.weighting[kind]
        if kind == "grad" and node.name == NO_GRAD_METHOD:
            continue
        target = OmegaConf.select(node, "target", throw_on_missing=False)
        method = resolve(kind, node.name, target if node.name == CUSTOM_METHOD else None)
        if kind == "loss":
            refuse_learning_from_test(cfg, method)
        else:
            mode = cfg.weighting.grad.mode
            # the datamodule's class is imported only where it decides (XTREME's pulls in transformers)
            multi_input = (
                mode == "rep"
                and method.produces == DIRECTION
                and getattr(get_class(cfg.dataset.datamodule._target_), "multi_input", False)
            )
            method.check_mode(mode, node.name, multi_input)
    if cfg.weighting.grad.mode not in GRAD_MODES:
        raise ValueError(
            f"weighting.grad.mode must be one of {list(GRAD_MODES)}, got `{cfg.weighting.grad.mode}`"
        )
    check_rep_gram(cfg.weighting.grad.get("rep_gram", REP_GRAMS[0]))
    if cfg.weighting.grad.name != NO_GRAD_METHOD and cfg.weighting.grad.mode == "rep":
        architecture = get_class(cfg.arch.model._target_)
        if not getattr(architecture, "supports_rep_mode", False):
            raise ValueError(
                f"arch={cfg.arch.name} ({architecture.__name__}) has no single shared representation, so "
                f"weighting/grad={cfg.weighting.grad.name} cannot run in rep mode; "
                "set weighting.grad.mode=param"
            )
    check_precision(cfg.trainer.get("precision", "32-true"), cfg.weighting.grad.name != NO_GRAD_METHOD)
    if cfg.get("on_nonfinite", "raise") not in NONFINITE_POLICIES:
        raise ValueError(f"on_nonfinite must be one of {list(NONFINITE_POLICIES)}, got `{cfg.on_nonfinite}`")


def refuse_learning_from_test(cfg: DictConfig, loss_method: type) -> None:
    """A loss method that learns from validation batches (MOML, Auto-λ, FORUM) must not see the test
    split."""
    if (
        getattr(loss_method, "needs_validation_batch", False)
        and OmegaConf.select(cfg, VALIDATION_KEY) == TEST
    ):
        name = cfg.weighting.loss.name
        preset = f" (rw_mtl/conf/method/{name}.yaml does)" if name != CUSTOM_METHOD else ""
        raise ValueError(
            f"{name} learns from validation batches, but {VALIDATION_KEY}={TEST} makes the test split "
            f"the validation split (it would learn from the test set); set {VALIDATION_KEY}={HELD_OUT}"
            f"{preset}"
        )
