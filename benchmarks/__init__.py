"""Reproducible measurements: ``python -m benchmarks.<name> --json FILE`` (+ markdown, PNG). The top
layer: may import everything; nothing imports it, and it is not part of the installed wheel."""
