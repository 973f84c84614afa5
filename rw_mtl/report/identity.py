"""What makes runs the same experiment: the identity the report groups seeds by (issue 13.5).

A run's resolved config (``results.json`` → ``config``) is flattened to dotted keys and split in two:

- the **setting**: the dataset and its config, the task set, the trainer, and every other key that is not
  the method — runs of different settings never share a table, and Δp is only taken within one;
- the **method**: the architecture, both weightings with every hparam and mode, and the keys a method
  preset in ``rw_mtl/conf/method/`` sets outside the weighting (MOML's held-out validation split):
  one table row per distinct method.

Keys that do not change what a run computes are left out of both (``IGNORED``): the seed (what the
group varies), where a run reads its data from and writes, what it logs and prints, how it resumes, its
name, and how the per-task Jacobian is computed (``batched_jacobian``: the same numbers, chosen for speed).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rw_mtl.resources import CONFIG_DIR

#: dotted keys (and everything below them) that do not define the experiment
IGNORED = (
    "seed",
    "paths",
    "dataset.datamodule.data_dir",
    "logger",
    "callbacks",
    "print_config",
    "resume",
    "ew_reference",
    "run_name",
    "experiment_name",
    "optimized_metric",
    "hydra",
    "trainer.log_every_n_steps",
    "trainer.enable_model_summary",
    "trainer.enable_progress_bar",
    "weighting.loss.batched_jacobian",
    "weighting.grad.batched_jacobian",
)

#: the config subtrees that are the method (a table row) rather than the setting
METHOD_ROOTS = ("arch", "weighting")

#: results.json fields that identify a run where its config is absent (older or hand-written files)
RESULT_FIELDS = ("arch", "loss_method", "grad_method", "grad_mode")

NO_GRAD = "none"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists become JSON text so that they compare and hash."""
    if isinstance(tree, Mapping):
        if not tree and prefix:
            return {prefix: "{}"}
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(tree, list | tuple):
        return {prefix: json.dumps(tree, sort_keys=True, default=str)}
    return {prefix: tree}


def _under(key: str, roots: Iterable[str]) -> bool:
    return any(key == root or key.startswith(root + ".") for root in roots)


@functools.cache
def method_preset_keys() -> frozenset[str]:
    """Keys outside ``weighting`` that a table-row preset (``rw_mtl/conf/method/*.yaml``) sets, such as
    ``dataset.datamodule.validation`` for MOML: they belong to that method's identity, not the setting."""
    keys: set[str] = set()
    for preset in sorted((Path(CONFIG_DIR) / "method").glob("*.yaml")):
        node = OmegaConf.to_container(OmegaConf.load(preset), resolve=False)
        node.pop("defaults", None)
        keys.update(key for key in flatten(node) if not _under(key, (*IGNORED, *METHOD_ROOTS)))
    return frozenset(keys)


@functools.cache
def weighting_defaults(kind: str, name: str) -> dict[str, Any]:
    """``weighting.<kind>.mode`` / ``.hparams.*`` as ``rw_mtl/conf/weighting/<kind>/<name>.yaml`` sets
    them; empty for a method without such a file (a user's own class)."""
    path = Path(CONFIG_DIR) / "weighting" / kind / f"{name}.yaml"
    if "/" in name or not path.is_file():
        return {}
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    picked = {key: node[key] for key in ("mode", "hparams") if key in node}
    return {k: v for k, v in flatten(picked, f"weighting.{kind}").items() if not _under(k, IGNORED)}


def config_flat(config: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved config flattened, without the ``IGNORED`` keys (and without the mode and hparams of
    ``weighting/grad=none``, which do nothing)."""
    flat = {k: v for k, v in flatten(config).items() if not _under(k, IGNORED)}
    if flat.get("weighting.grad.name") == NO_GRAD:
        flat = {k: v for k, v in flat.items() if not k.startswith("weighting.grad.") or k.endswith(".name")}
    return flat


def experiment_config(run: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened config of a results.json payload (``config_flat``), completed by the payload's own
    fields (dataset, task set, architecture and methods), which every results.json has."""
    flat = config_flat(run.get("config") or {})
    flat["dataset.name"] = run["dataset"]
    flat["tasks"] = json.dumps(run["tasks"], sort_keys=True)
    for field in RESULT_FIELDS:
        if field == "grad_mode" and run.get("grad_method") == NO_GRAD:
            continue
        if run.get(field) is not None:
            flat[f"result.{field}"] = run[field]
    return flat


def is_method_key(key: str) -> bool:
    return _under(key, METHOD_ROOTS) or key in method_preset_keys() or key.startswith("result.")


def split_identity(flat: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(setting, method) parts of ``experiment_config``'s output."""
    setting = {k: v for k, v in flat.items() if not is_method_key(k)}
    method = {k: v for k, v in flat.items() if is_method_key(k)}
    return setting, method


def config_part(part: Mapping[str, Any]) -> dict[str, Any]:
    """A setting or method part without what only results.json knows (the task set, its own fields)."""
    return {k: v for k, v in part.items() if k != "tasks" and not k.startswith("result.")}


def config_identity(config: Mapping[str, Any]) -> tuple[str, str]:
    """The digests of a composed config's setting and method parts; a group whose ``config_part``s have
    the same digests holds that config's runs (how ``rw-mtl litmus`` finds the runs it asked for)."""
    setting, method = split_identity(config_flat(config))
    return digest(config_part(setting)), digest(config_part(method))


def digest(part: Mapping[str, Any]) -> str:
    """A short stable hash of a flattened config part (names a setting or a group in the report)."""
    text = json.dumps(sorted(part.items()), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def short_keys(keys: Iterable[str]) -> dict[str, str]:
    """Dotted key → the shortest trailing part that is unique among ``keys`` (``distribution``,
    ``mode``; ``loss.c`` and ``grad.c`` where both weightings have a ``c``)."""
    parts = {
        key: [p for p in key.split(".") if p not in ("hparams", "weighting", "datamodule", "result")] or [key]
        for key in dict.fromkeys(keys)
    }
    names = {}
    for key, mine in parts.items():
        for length in range(1, len(mine) + 1):
            if all(other[-length:] != mine[-length:] for o, other in parts.items() if o != key):
                break
        names[key] = ".".join(mine[-length:])
    return names


def show(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
