"""OmegaConf resolvers that rw_mtl's own configs use, registered when the package is imported.

``${rw_mtl.uid:}``: six random hex digits, drawn once per composed config (``use_cache``, like Hydra's
``${now:…}``, whose cache Hydra copies into every job of a sweep). The default run and sweep directories end
in ``<time>_<uid>``, so two runs started in the same second (two terminals, a script, the README's commands)
never share a directory; the time alone would give both the same one, and the second would be refused.
"""

from __future__ import annotations

import secrets

from omegaconf import OmegaConf

UID_RESOLVER = "rw_mtl.uid"


def register_resolvers() -> None:
    """Register rw_mtl's resolvers once per process (a no-op when they already are)."""
    if not OmegaConf.has_resolver(UID_RESOLVER):
        OmegaConf.register_new_resolver(UID_RESOLVER, lambda: secrets.token_hex(3), use_cache=True)
