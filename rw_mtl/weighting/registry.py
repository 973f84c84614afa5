"""The one place where weighting methods are registered under their config names.

A new method is one file under ``loss/`` or ``grad/``, one line here, and one YAML file under
``conf/weighting/loss/`` or ``conf/weighting/grad/`` whose ``name`` is the key used here.
"""

from __future__ import annotations

from rw_mtl.weighting.base import GradWeighting, LossWeighting
from rw_mtl.weighting.grad.rgw import RGW
from rw_mtl.weighting.loss.ew import EW
from rw_mtl.weighting.loss.rlw import RLW

LOSS_METHODS: dict[str, type[LossWeighting]] = {
    "ew": EW,
    "rlw": RLW,
}

GRAD_METHODS: dict[str, type[GradWeighting]] = {
    "rgw": RGW,
}

# The config choice `weighting/grad=none` means "no gradient balancing": plain backward of Σ λ_t ℓ_t.
NO_GRAD_METHOD = "none"


def get(name: str) -> type[LossWeighting] | type[GradWeighting]:
    """The class registered as ``name`` (e.g. ``"rlw"``, ``"rgw"``); construct it as ``cls(task_num, **hp)``."""
    for table in (LOSS_METHODS, GRAD_METHODS):
        if name in table:
            return table[name]
    raise KeyError(
        f"unknown weighting method {name!r}; loss methods: {sorted(LOSS_METHODS)}, "
        f"gradient methods: {sorted(GRAD_METHODS)} (conf/weighting/loss/, conf/weighting/grad/)"
    )
