"""Everything that acts: the ``Policy`` protocol (``protocol``), the static baselines and
re-rankers (``baselines``), the fair re-rankers (``fair``), a trained SB3 agent (``agent``) and
its ONNX export run by onnxruntime (``onnx``).

A policy maps a batch of ``ids`` observations to a batch of actions. This room imports the
environments and the layers below them, never the rooms that train or evaluate policies.
"""
