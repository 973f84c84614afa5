"""``rw-mtl eval ckpt_path=PATH [split=test|val] [out=FILE] [key=value …]`` (or ``python -m rw_mtl.eval …``):
test a saved checkpoint on one split and write its results as a run does.

The model is rebuilt from the run's own resolved config (``run_config.json``, found beside the checkpoint's
``checkpoints/`` folder, or given as ``run_config=FILE``), not composed again from today's config files, so
a checkpoint is always evaluated by the network and data pipeline that trained it. ``key=value`` pairs
override that config (e.g. ``paths.data_dir=/data`` where the data has moved,
``dataset.datamodule.batch_size=256``); a key the run's config does not have is refused.

Writes ``<run dir>/eval/<checkpoint name>-<split>.json`` (or ``out=FILE``), atomically: the run's identity
(dataset, architecture, methods, seed, tasks), the checkpoint, the split and its per-task metrics, plus the
config used; prints the per-task table.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rw_mtl.results import read_results, write_json_atomic
from rw_mtl.run_dir import RUN_CONFIG_FILE

SPLITS = ("test", "val")
EVAL_KEYS = ("ckpt_path", "split", "out", "run_config")
CALLBACK_STATES_WARNING = "Be aware that when using `ckpt_path`, callbacks used to create the checkpoint"
USAGE = "usage: rw-mtl eval ckpt_path=PATH [split=test|val] [out=FILE] [run_config=FILE] [key=value …]"


def parse_arguments(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """``key=value`` arguments → (this command's own keys, overrides of the run's config)."""
    own, overrides = {}, []
    for argument in argv:
        key, equals, value = argument.partition("=")
        if not equals:
            raise ValueError(f"`{argument}` is not key=value\n{USAGE}")
        if key in EVAL_KEYS:
            own[key] = value
        else:
            overrides.append(argument)
    if "ckpt_path" not in own:
        raise ValueError(f"ckpt_path=… is required\n{USAGE}")
    if own.setdefault("split", "test") not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got `{own['split']}`")
    return own, overrides


def run_config(checkpoint: Path, given: str | None, overrides: list[str]) -> DictConfig:
    """The training run's resolved config (``<run dir>/run_config.json``) with ``overrides`` applied."""
    path = Path(given) if given else checkpoint.resolve().parent.parent / RUN_CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no {RUN_CONFIG_FILE} at {path}: the checkpoint is not in <run dir>/checkpoints/; "
            f"pass run_config=<the run's {RUN_CONFIG_FILE}>"
        )
    config = OmegaConf.create(read_results(path))
    OmegaConf.set_struct(config, True)
    try:
        return OmegaConf.merge(config, OmegaConf.from_dotlist(overrides))
    except Exception as err:  # omegaconf's ConfigKeyError names the key
        raise ValueError(f"cannot override the run's config ({path}): {err}") from err


def evaluate(checkpoint: Path, split: str, cfg: DictConfig) -> dict:
    """Test (or validate) ``checkpoint`` on ``split``; the results payload."""
    import lightning as L

    from rw_mtl.build import build_datamodule, build_module, method_identity
    from rw_mtl.checkpoints import AtomicCheckpointIO
    from rw_mtl.quiet import silence_library_noise

    silence_library_noise()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule.tasks, multi_input=getattr(datamodule, "multi_input", False))
    trainer = L.Trainer(
        accelerator=cfg.trainer.get("accelerator", "auto"),
        devices=1,
        precision=cfg.trainer.get("precision", "32-true"),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],  # a checkpoint that cannot be loaded is named in the error
    )
    evaluation = trainer.test if split == "test" else trainer.validate
    with warnings.catch_warnings():  # the training callbacks' states do not matter for evaluating
        warnings.filterwarnings("ignore", message=CALLBACK_STATES_WARNING)
        evaluation(module, datamodule=datamodule, ckpt_path=str(checkpoint), verbose=False)
    return {
        "dataset": cfg.dataset.name,
        "arch": cfg.arch.name,
        "loss_method": method_identity(cfg.weighting.loss),
        "grad_method": method_identity(cfg.weighting.grad),
        "grad_mode": cfg.weighting.grad.mode,
        "seed": cfg.seed,
        "tasks": {name: dict(task.higher_is_better) for name, task in datamodule.tasks.items()},
        "checkpoint": str(checkpoint.resolve()),
        "split": split,
        "metrics": {split: module.epoch_metrics[split]},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def main(argv: list[str] | None = None) -> int:
    """Console entry (``rw-mtl eval``, ``python -m rw_mtl.eval``); exit code 2 on bad arguments."""
    from rw_mtl.console import format_split_metrics

    argv = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        return 0
    from rw_mtl.checkpoints import checkpoint_problem  # torch: after --help

    try:
        own, overrides = parse_arguments(argv)
        checkpoint = Path(own["ckpt_path"])
        if not checkpoint.is_file():
            raise FileNotFoundError(f"ckpt_path={checkpoint}: no such checkpoint")
        cfg = run_config(checkpoint, own.get("run_config"), overrides)
        problem = checkpoint_problem(checkpoint)
        if problem is not None:
            raise ValueError(f"ckpt_path={checkpoint} cannot be loaded ({problem})")
    except (ValueError, FileNotFoundError) as err:
        print(f"rw-mtl eval: {err}", file=sys.stderr)
        return 2
    results = evaluate(checkpoint, own["split"], cfg)
    run_dir = checkpoint.resolve().parent.parent
    out = Path(own.get("out") or run_dir / "eval" / f"{checkpoint.stem}-{own['split']}.json")
    write_json_atomic(out, results)
    print(format_split_metrics(results, own["split"]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
