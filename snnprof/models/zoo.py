"""Import every zoo module so its ``@register_model`` decorators run."""

from __future__ import annotations

from snnprof.models import ottt, sj_cnn  # noqa: F401
