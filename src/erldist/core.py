"""Which core runs the per-byte work: the native one when installed, else pure Python.

The native core is the separate package ``erldist-native`` (the ``native/``
folder of this repository, Rust built by maturin). It is optional: without it
every function has its pure-Python twin, with the same results and errors.
``ERLDIST_CORE=pure`` or ``ERLDIST_CORE=native`` forces one (``native`` fails
loudly when the module is missing, so a test run cannot silently fall back).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Final

__all__ = ["CORE_ENV", "core_name", "native_module"]

CORE_ENV: Final = "ERLDIST_CORE"
#: The shape of ``erldist_native`` this version of erldist speaks.
_NATIVE_API: Final = 5


def _load() -> ModuleType | None:
    choice = os.environ.get(CORE_ENV, "").strip().lower() or "auto"
    if choice not in {"auto", "pure", "native"}:
        raise ImportError(f"{CORE_ENV} must be 'pure', 'native' or unset, got {choice!r}")
    if choice == "pure":
        return None
    try:
        import erldist_native  # noqa: PLC0415 - optional, and ERLDIST_CORE decides first
    except ImportError:
        if choice == "native":
            raise ImportError(
                f"{CORE_ENV}=native but the erldist_native module is not installed "
                "(pip install ./native, which needs a Rust toolchain)"
            ) from None
        return None
    api = getattr(erldist_native, "API_VERSION", None)
    if api != _NATIVE_API:
        if choice == "native":
            raise ImportError(
                f"erldist_native speaks API {api}, this erldist needs {_NATIVE_API}: "
                "reinstall it from the same checkout"
            )
        return None
    module: ModuleType = erldist_native
    return module


_NATIVE: Final = _load()


def native_module() -> ModuleType | None:
    """The loaded ``erldist_native`` module, or ``None`` when the pure core runs."""
    return _NATIVE


def core_name() -> str:
    """``"native"`` or ``"pure"``: which core this process uses."""
    return "pure" if _NATIVE is None else "native"
