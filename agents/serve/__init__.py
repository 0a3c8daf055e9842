"""Serving a trained policy: a ranking API that logs what it shows with propensities
(``python -m agents.serve``)."""

BACKENDS = ("onnx", "torch")
"""How the policy network runs: onnxruntime on the exported graph, or SB3's torch model."""
