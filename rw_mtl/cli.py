"""The ``rw-mtl`` command (also ``python -m rw_mtl``): training by default, or a named subcommand.

``rw-mtl [overrides…]`` trains one configuration (Hydra); ``rw-mtl <subcommand> …`` runs one of
``SUBCOMMANDS``; ``rw-mtl --help`` lists both and every config group's options (rw_mtl.help). Each
subcommand's module is imported only when it is called, and training imports Lightning only once Hydra
has composed the config, so that ``--help``, ``--cfg`` and the light subcommands (the report) start fast.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand → "module:function"; the function takes the remaining arguments and returns an exit code.
SUBCOMMANDS = {
    "eval": "rw_mtl.eval:main",
    "report": "rw_mtl.report.__main__:main",
    "litmus": "rw_mtl.litmus:main",
}


def main(argv: list[str] | None = None) -> int | None:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to a subcommand, or to training."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in SUBCOMMANDS:
        module, _, function = SUBCOMMANDS[args[0]].partition(":")
        return getattr(importlib.import_module(module), function)(args[1:])
    if "--help" in args or "-h" in args:
        from rw_mtl.help import help_text

        print(help_text([arg for arg in args if not arg.startswith("-")], SUBCOMMANDS))
        return 0
    if argv is not None:  # Hydra reads the command line itself
        sys.argv = [sys.argv[0], *args]
    from rw_mtl.train import main as train

    train()
    return 0
