"""Multi-task architectures: how a backbone is shared between task heads."""

from rw_mtl.arch.base import MTLArchitecture
from rw_mtl.arch.hps import HPS

__all__ = ["HPS", "MTLArchitecture"]
