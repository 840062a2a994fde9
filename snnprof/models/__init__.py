"""The model zoo: published SNN/ANN architectures registered by name."""

from __future__ import annotations

from snnprof.models.registry import (
    ModelEntry,
    UnknownModelError,
    create_model,
    get_entry,
    list_models,
    register_model,
)

__all__ = ["ModelEntry", "UnknownModelError", "create_model", "get_entry", "list_models", "register_model"]
