"""Model export: ONNX graphs of the zoo's stateful spiking networks (``snnprof export``).

:mod:`snnprof.export.onnx_lif` exports the event_flow LIF-FireNet family one time step at a time,
with the neuron updates written in standard ONNX operators and every recurrent state as a graph
input and output. Needs the optional ``onnx`` and ``onnxscript`` packages (``onnxruntime`` to verify).
"""
