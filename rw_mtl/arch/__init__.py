"""Multi-task architectures: how a backbone is shared between task heads."""

from rw_mtl.arch.base import MTLArchitecture
from rw_mtl.arch.cgc import CGC
from rw_mtl.arch.cross_stitch import CrossStitch
from rw_mtl.arch.dselect_k import DSelectK
from rw_mtl.arch.hps import HPS
from rw_mtl.arch.ltb import LTB
from rw_mtl.arch.mmoe import MMoE
from rw_mtl.arch.mtan import MTAN
from rw_mtl.arch.nddr_cnn import NDDRCNN
from rw_mtl.arch.ple import PLE

__all__ = [
    "CGC",
    "HPS",
    "LTB",
    "MTAN",
    "NDDRCNN",
    "PLE",
    "CrossStitch",
    "DSelectK",
    "MMoE",
    "MTLArchitecture",
]
