"""Optional dependencies: import them lazily and name the extra that provides them."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRA_OF = {
    "pymc": "bayes",
    "arviz": "bayes",
    "nutpie": "bayes",
    "numpyro": "bayes",
    "jax": "bayes",
    "pytensor": "bayes",
    "torch": "train",
    "trl": "train",
    "transformers": "train",
    "datasets": "train",
    "accelerate": "train",
    "tokenizers": "train",
    "gguf": "train",
    "peft": "train",
    "dask": "dask",
    "distributed": "dask",
}


def require(module: str, purpose: str | None = None) -> ModuleType:
    """Import an optional dependency or raise an ImportError naming the extra to install.

    Examples
    --------
    >>> np = require("numpy")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised by the extras test
        root = module.split(".")[0]
        extra = _EXTRA_OF.get(root)
        what = f" for {purpose}" if purpose else ""
        hint = (
            f'install the extra: pip install "pluralign[{extra}]"'
            if extra
            else f"pip install {root}"
        )
        raise ImportError(f"{module} is needed{what}; {hint}") from exc
