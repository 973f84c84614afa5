"""``rw-mtl --help``: the commands, then every config group with one line per option.

Each option's line is the first comment line of its YAML file, so the help stays true as configs are
added; the options chosen by the defaults and the given overrides are starred (Hydra composes them). It
reads the config files and imports neither torch nor Lightning. ``--hydra-help`` and ``--cfg`` remain
Hydra's own.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
from pathlib import Path

from rw_mtl import __version__
from rw_mtl.resources import CONFIG_DIR

MIN_WIDTH = 110  # lines are cut to the terminal's width, or this where the terminal is narrower or absent
#: What each config group chooses; a group missing here is listed with its options all the same.
GROUP_SUMMARIES = {
    "dataset": "data module, its tasks, encoder, head, optimizer and epochs (docs/datasets.md)",
    "arch": "how the encoder is shared between the task heads",
    "weighting/loss": "loss weights λ (Eq. 1)",
    "weighting/grad": "gradient weighting of the shared part (Eq. 2); modes: param, rep, last_layer",
    "method": "+method=…: one row of the paper's tables, a loss/gradient pair or an RLW sampler",
    "experiment": "+experiment=…: one of the paper's sweeps (make tableN; DRY=1 lists its jobs)",
    "trainer": "lightning.Trainer arguments",
    "logger": "experiment loggers (each writes offline)",
    "callbacks": "Lightning callbacks (remove one with ~callbacks.<name>)",
    "paths": "where data is read and outputs are written",
    "debug": "quick checks that write below <log_dir>/debug/",
    "hparams_search": "-m hparams_search=…: an Optuna search of one method's hyperparameters",
    "hydra/launcher": "how a sweep's jobs run (-m …)",
    "local": "machine-specific settings, git-ignored (create rw_mtl/conf/local/default.yaml)",
}
GROUP_ORDER = list(GROUP_SUMMARIES)
USAGE = [
    ("rw-mtl [group=option …] [key=value …]", "train one configuration (Hydra overrides)"),
    ("rw-mtl -m group=a,b seed=0,1,2 …", "a sweep: one job per combination (Hydra multirun)"),
    ("rw-mtl --cfg job [overrides]", "print the composed config (--hydra-help: Hydra's own options)"),
]


def config_groups(config_dir: str | Path = CONFIG_DIR) -> dict[str, list[Path]]:
    """Group name (``weighting/loss``) → its option files, for every folder of YAML files."""
    root = Path(config_dir)
    groups: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.yaml")):
        if path.parent != root:
            groups.setdefault(path.parent.relative_to(root).as_posix(), []).append(path)
    known = [group for group in GROUP_ORDER if group in groups]
    return {group: groups[group] for group in [*known, *sorted(set(groups) - set(known))]}


def option_summary(path: Path) -> str:
    """The first comment line of a config file (a ``# @package`` line is skipped), '' if it has none."""
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("# @package"):
            continue
        return text.lstrip("#").strip() if text.startswith("#") else ""
    return ""


def subcommand_summary(target: str) -> str:
    """The first line of a subcommand module's docstring, read without importing the module."""
    spec = importlib.util.find_spec(target.partition(":")[0])
    if spec is None or spec.origin is None:
        return ""
    docstring = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    return docstring.splitlines()[0].replace("``", "") if docstring else ""


def chosen_options(overrides: list[str]) -> dict[str, str]:
    """Group → option that Hydra composes from the defaults and ``overrides``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        config = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    return {group: choice for group, choice in config.hydra.runtime.choices.items() if choice is not None}


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def help_text(overrides: list[str], subcommands: dict[str, str]) -> str:
    """The whole help, with the options chosen by ``overrides`` starred (the defaults', with a note,
    where the overrides do not compose)."""
    width = max(MIN_WIDTH, shutil.get_terminal_size().columns)
    lines = [f"rw-mtl — multi-task learning experiments on task balancing (rw_mtl {__version__})", ""]
    try:
        chosen = chosen_options(overrides)
    except Exception as err:  # Hydra's errors name the bad override and the valid options
        chosen = chosen_options([])
        lines += [f"note: {' '.join(overrides)} does not compose ({err}); * marks the defaults", ""]
    lines.append("usage:")
    usage = [*USAGE]
    for name, target in subcommands.items():
        usage.append((f"rw-mtl {name} …", subcommand_summary(target)))
    for command, what in usage:
        lines.append(_fit(f"  {command:<40} {what}", width))
    lines += ["", "config groups (group=option; * chosen; +group=option for a group without a default):"]
    for group, paths in config_groups().items():
        lines.append(_fit(f"  {group:<18} {GROUP_SUMMARIES.get(group, '')}".rstrip(), width))
        name_width = max(16, *(len(path.stem) + 1 for path in paths))
        for path in paths:
            mark = "*" if chosen.get(group) == path.stem else " "
            lines.append(_fit(f"    {path.stem:<{name_width}}{mark} {option_summary(path)}".rstrip(), width))
    lines += [
        "",
        "any key: key=value (e.g. seed=1 dataset.optimizer.lr=0.01); a new key: +key=value; remove: ~key.",
        "Examples: README.md. Config files: " + CONFIG_DIR,
    ]
    return "\n".join(lines)
