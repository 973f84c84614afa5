"""The one place where weighting methods are registered under their config names.

A new method is one file under ``loss/`` or ``grad/``, one line here, and one YAML file under
``rw_mtl/conf/weighting/loss/`` or ``rw_mtl/conf/weighting/grad/`` whose ``name`` is the key used here.
A user's own method needs none of that: ``weighting/grad=custom weighting.grad.target=my_pkg.MyMethod``
(or ``weighting/loss=custom …``) builds any subclass of the contracts in ``rw_mtl.weighting.base``.
"""

from __future__ import annotations

import importlib

from rw_mtl.weighting.base import GradWeighting, LossWeighting
from rw_mtl.weighting.grad.aligned_mtl import AlignedMTL
from rw_mtl.weighting.grad.cagrad import CAGrad
from rw_mtl.weighting.grad.config import ConFIG
from rw_mtl.weighting.grad.crmogm import CRMOGM
from rw_mtl.weighting.grad.db_mtl import DB_MTL
from rw_mtl.weighting.grad.dualproj import DualProj
from rw_mtl.weighting.grad.excess_mtl import ExcessMTL
from rw_mtl.weighting.grad.fairgrad import FairGrad
from rw_mtl.weighting.grad.graddrop import GradDrop
from rw_mtl.weighting.grad.gradnorm import GradNorm
from rw_mtl.weighting.grad.gradvac import GradVac
from rw_mtl.weighting.grad.imtl_g import IMTL_G
from rw_mtl.weighting.grad.krum import Krum
from rw_mtl.weighting.grad.mgda_ub import MGDA_UB
from rw_mtl.weighting.grad.moco import MoCo
from rw_mtl.weighting.grad.modo import MoDo
from rw_mtl.weighting.grad.nash_mtl import NashMTL
from rw_mtl.weighting.grad.pcd import PCD
from rw_mtl.weighting.grad.pcgrad import PCGrad
from rw_mtl.weighting.grad.rgw import RGW
from rw_mtl.weighting.grad.rotograd import RotoGrad
from rw_mtl.weighting.grad.sdmgrad import SDMGrad
from rw_mtl.weighting.grad.trimmed_mean import TrimmedMean
from rw_mtl.weighting.grad.upgrad import UPGrad
from rw_mtl.weighting.loss.auto_lambda import AutoLambda
from rw_mtl.weighting.loss.dwa import DWA
from rw_mtl.weighting.loss.ew import EW
from rw_mtl.weighting.loss.famo import FAMO
from rw_mtl.weighting.loss.forum import FORUM
from rw_mtl.weighting.loss.gls import GLS
from rw_mtl.weighting.loss.imtl_l import IMTL_L
from rw_mtl.weighting.loss.moml import MOML
from rw_mtl.weighting.loss.rlw import RLW
from rw_mtl.weighting.loss.stch import STCH
from rw_mtl.weighting.loss.uw import UW

LOSS_METHODS: dict[str, type[LossWeighting]] = {
    "ew": EW,
    "rlw": RLW,
    "uw": UW,
    "dwa": DWA,
    "imtl_l": IMTL_L,
    "moml": MOML,
    "gls": GLS,
    "stch": STCH,
    "famo": FAMO,
    "auto_lambda": AutoLambda,
    "forum": FORUM,
}

GRAD_METHODS: dict[str, type[GradWeighting]] = {
    "rgw": RGW,
    "mgda_ub": MGDA_UB,
    "gradnorm": GradNorm,
    "pcgrad": PCGrad,
    "graddrop": GradDrop,
    "imtl_g": IMTL_G,
    "gradvac": GradVac,
    "cagrad": CAGrad,
    "rotograd": RotoGrad,
    "excess_mtl": ExcessMTL,
    "db_mtl": DB_MTL,
    "fairgrad": FairGrad,
    "sdmgrad": SDMGrad,
    "modo": MoDo,
    "moco": MoCo,
    "upgrad": UPGrad,
    "dualproj": DualProj,
    "aligned_mtl": AlignedMTL,
    "nash_mtl": NashMTL,
    "config": ConFIG,
    "krum": Krum,
    "trimmed_mean": TrimmedMean,
    "crmogm": CRMOGM,
    "pcd": PCD,
}

# The config choice `weighting/grad=none` means "no gradient balancing": plain backward of Σ λ_t ℓ_t.
NO_GRAD_METHOD = "none"

# The config choice `custom`: the class named by the dotted path `weighting.<kind>.target`.
CUSTOM_METHOD = "custom"

_KINDS = {"loss": (LOSS_METHODS, LossWeighting), "grad": (GRAD_METHODS, GradWeighting)}


def get(name: str) -> type[LossWeighting] | type[GradWeighting]:
    """The class registered as ``name`` (e.g. ``"rlw"``, ``"rgw"``); build it as ``cls(task_num, **hp)``."""
    for table in (LOSS_METHODS, GRAD_METHODS):
        if name in table:
            return table[name]
    raise KeyError(
        f"unknown weighting method {name!r}; loss methods: {sorted(LOSS_METHODS)}, "
        f"gradient methods: {sorted(GRAD_METHODS)} (rw_mtl/conf/weighting/loss/, rw_mtl/conf/weighting/grad/)"
    )


def resolve(kind: str, name: str, target: str | None = None) -> type[LossWeighting] | type[GradWeighting]:
    """The class behind the config choice ``weighting/<kind>=<name>`` (``kind`` is "loss" or "grad"): a
    registered method, or for ``custom`` the class at the dotted path ``target``, which must subclass
    LossWeighting (loss) or GradWeighting (grad)."""
    table, base = _KINDS[kind]
    if name != CUSTOM_METHOD:
        if name not in table:
            raise ValueError(
                f"weighting/{kind}: unknown method `{name}`; valid choices: {sorted([*table, CUSTOM_METHOD])}"
            )
        return table[name]
    key = f"weighting.{kind}.target"
    if not target or not isinstance(target, str) or "." not in target:
        raise ValueError(
            f"weighting/{kind}=custom needs {key}=<module>.<Class> (a dotted path), got {target!r}"
        )
    module_name, _, class_name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{key}={target} cannot be imported ({err}); is its package on PYTHONPATH?") from err
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f"{key}={target} is not a subclass of rw_mtl.weighting.base.{base.__name__}")
    return cls
