"""Lazy public faces: a stage's ``__init__`` names its API without importing it (torch and the
heavy libraries load on first use, so the command line starts fast)."""

from __future__ import annotations

import importlib


def exports(package: str, names: dict[str, str]):
    """``(__getattr__, __dir__)`` for a package whose attribute ``name`` lives in ``package.<names[name]>``."""

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
