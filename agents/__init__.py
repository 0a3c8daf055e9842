"""Policies: training, baselines, online evaluation and off-policy evaluation (to come)."""
