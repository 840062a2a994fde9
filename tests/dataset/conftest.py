from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dataset import _tiny


@pytest.fixture
def tiny_zoo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The tiny reader and models, registered for one test only."""
    from snnprof import data
    from snnprof.models import registry

    data.list_readers()
    registry.get_entry("sj_spiking_cnn")
    monkeypatch.setitem(data._READERS, _tiny.READER, _tiny.read_tiny)
    for name, entry in _tiny.entries().items():
        monkeypatch.setitem(registry._REGISTRY, name, entry)
    yield
