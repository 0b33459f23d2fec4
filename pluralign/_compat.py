"""Optional dependencies: import them lazily and name the extra that provides them."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from types import ModuleType
from typing import Any

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
        if module.split(".")[0] in _USES_PYTENSOR:
            configure_pytensor()
        with warnings.catch_warnings():
            # libraries that import tqdm.auto when imported (transformers, datasets) make it warn,
            # in Jupyter without ipywidgets, that it falls back to the text bar it then draws
            warnings.filterwarnings("ignore", message="IProgress not found")
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


#: Optional dependencies that import PyTensor, configured by :func:`configure_pytensor` first.
_USES_PYTENSOR = frozenset({"pymc", "pytensor", "nutpie"})

#: The notice PyTensor prints when it finds no BLAS to link its C code against.
_NO_BLAS = "PyTensor could not link to a BLAS installation"


def configure_pytensor() -> None:
    """Settle PyTensor's BLAS and compiler settings once, before its first use, without notices.

    PyTensor looks for a BLAS library the first time it compiles C code and, when it finds none
    (as with a pip install), warns on every new process. pluralign samples with nutpie, which
    compiles through Numba and does not link PyTensor's C code, so the missing BLAS costs it
    nothing: the search runs here once with that one notice silenced, and its result (empty when
    nothing was found) is kept. Without a C++ compiler PyTensor falls back to Python code; the
    compiler setting is then made explicit so that PyTensor does not warn about it either. Any
    value the user gives through ``PYTENSOR_FLAGS`` or ``.pytensorrc`` is left as it is.
    """
    if _pytensor_configured:
        return
    _pytensor_configured.append(True)
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "pytensor" not in sys.modules and "cxx" not in flags and _no_compiler():
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, "cxx=") if f)
    try:
        pytensor = importlib.import_module("pytensor")
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NO_BLAS, category=UserWarning)
        _ = pytensor.config.blas__ldflags  # the search runs on first access, and its result is kept


_pytensor_configured: list[bool] = []


def _no_compiler() -> bool:
    import shutil

    return shutil.which("g++") is None


def tqdm(*args: Any, **kwargs: Any) -> Any:
    """A progress bar: tqdm's notebook widget where ipywidgets is installed, its text bar elsewhere.

    ``tqdm.auto`` inside Jupyter without ipywidgets warns ("IProgress not found") on every bar and
    then draws the text bar anyway; choosing the text bar here draws the same without the notice.

    Examples
    --------
    >>> with tqdm(total=2, disable=True) as bar:
    ...     bar.update(2)
    """
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm as bar
    else:
        from tqdm.std import tqdm as bar
    return bar(*args, **kwargs)
