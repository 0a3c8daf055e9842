"""Reproducible measurements: ``python -m benchmarks.<name> --json FILE`` (+ markdown, PNG)."""
