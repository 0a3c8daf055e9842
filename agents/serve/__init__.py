"""Serving a trained policy: a ranking API that logs what it shows with propensities
(``python -m agents.serve``)."""
