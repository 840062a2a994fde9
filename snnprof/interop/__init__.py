"""Interoperability with other SNN tools: NIR graphs in (:func:`load_nir`) and out (:func:`to_nir`).

NIR (the Neuromorphic Intermediate Representation, packages ``nir`` and ``nirtorch``) is what
snnTorch, Norse, Sinabs, Lava and Rockpool export to. Importing this package also registers the
counting rules of the NIR node modules (the rules of Norse's and Sinabs' neurons are in
:mod:`snnprof.counting.rules.frameworks`).
"""

from __future__ import annotations

from snnprof.interop.nir_import import DEFAULT_DT, NIRImportError, NIRNetwork, graph_input_shape, load_nir, read_graph

__all__ = ["DEFAULT_DT", "NIRImportError", "NIRNetwork", "graph_input_shape", "load_nir", "read_graph"]
