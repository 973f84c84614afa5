"""The paper's order of rows and columns, and the blocks its tables mark the best of.

Tables 1, 3, 6, 7 and 8 list EW first, then the loss-balancing methods with RLW last, then the
gradient-balancing methods with RGW last; the best value of a column within the loss block carries a
superscript *, within the gradient block a †, and the best over all methods is bold (the captions of
Tables 1, 3, 6, 7, 8; EW belongs to neither block: Table 8's Office-31 D column stars the four loss
methods at 96.72 and not EW's equal 96.72). The rows' order is the one of the paper's Table 1 sweep,
``rw_mtl/conf/experiment/table1.yaml`` (the names of ``rw_mtl/conf/method/``); methods the paper does not
have go after its own ones and before RLW / RGW, which close their block as in the paper. Runs that
combine a loss method with a gradient method form a last block (Table 4's cells), without a mark.
"""

from __future__ import annotations

import functools
from pathlib import Path

from omegaconf import OmegaConf

from rw_mtl.resources import CONFIG_DIR

NO_GRAD, EW = "none", "ew"
#: block → what the table's first column calls it, and the mark of its best value
BLOCKS = ("baseline", "loss", "grad", "combined")
BLOCK_NAMES = {"baseline": "", "loss": "Loss Bal.", "grad": "Gradient Bal.", "combined": "Loss + Grad."}
BLOCK_MARKS = {"loss": "*", "grad": "†"}
#: the random method that closes each block: the litmus test of the block's methods
RANDOM = {"loss": "rlw", "grad": "rgw"}

#: RLW's sampling distributions in the order of Section 5.3 (and Fig. 1), with the paper's names
SAMPLERS = {
    "uniform": "Uniform",
    "normal": "Normal",
    "dirichlet": "Dirichlet",
    "bernoulli": "Bernoulli",
    "constrained_bernoulli": "c-Bernoulli",
}
#: architectures in the order of Table 5's columns, with the paper's names
ARCHS = {  # the paper's four (Table 5's order), then LibMTL's mixtures of experts and LTB
    "hps": "HPS",
    "cross_stitch": "Cross-stitch",
    "mtan": "MTAN",
    "nddr_cnn": "NDDR-CNN",
    "mmoe": "MMoE",
    "cgc": "CGC",
    "ple": "PLE",
    "dselect_k": "DSelect-k",
    "ltb": "LTB",
}

PAPER_SWEEP = "table1"


def block_of(loss: str, grad: str) -> str:
    """ "baseline" (EW alone), "loss" (a loss method alone), "grad" (a gradient method with EW losses) or
    "combined" (both, as in Table 4)."""
    if grad == NO_GRAD:
        return "baseline" if loss == EW else "loss"
    return "grad" if loss == EW else "combined"


@functools.cache
def paper_methods() -> tuple[str, ...]:
    """The table rows in the paper's order: ``+method`` of ``rw_mtl/conf/experiment/table1.yaml``."""
    sweep = OmegaConf.load(Path(CONFIG_DIR) / "experiment" / f"{PAPER_SWEEP}.yaml")
    return tuple(name.strip() for name in str(sweep.hydra.sweeper.params["+method"]).split(","))


def method_rank(name: str, block: str) -> tuple[int, str]:
    """Where a loss (block "loss") or gradient (block "grad") method goes within its block."""
    if name == RANDOM.get(block):
        return (2, "")
    if name in paper_methods():
        return (0, f"{paper_methods().index(name):03d}")
    return (1, name)


def row_rank(loss: str, grad: str) -> tuple:
    """Sort key of a (loss, grad) pair: block, then the paper's order within it (combined rows by the
    gradient method, then the loss method, as Table 4 reads)."""
    block = block_of(loss, grad)
    if block == "loss":
        within = (method_rank(loss, "loss"),)
    elif block == "grad":
        within = (method_rank(grad, "grad"),)
    elif block == "combined":
        within = (method_rank(grad, "grad"), method_rank(loss, "loss"))
    else:
        within = ()
    return (BLOCKS.index(block), *within)


def arch_rank(arch: str) -> tuple[int, str]:
    return (list(ARCHS).index(arch), "") if arch in ARCHS else (len(ARCHS), arch)
