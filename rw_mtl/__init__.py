"""rw_mtl: multi-task learning experiments on task balancing.

Reproduces *Reasonable Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning*
(Lin et al.): random loss weighting (RLW) and random gradient weighting (RGW) against the
loss- and gradient-balancing baselines, on a Lightning training loop driven by Hydra configs.
"""

__version__ = "0.1.0"

from rw_mtl.resolvers import register_resolvers

register_resolvers()
