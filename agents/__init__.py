"""Policies, their training, evaluation, serving and the studies built on them: the top layer.

Rooms, each importing only the rooms below it (``make lint`` checks the order):

- ``studies``: long studies that combine the rest (continuous optimisation, the trial backend);
- ``serve`` and ``ope``: serving a trained policy with propensities; off-policy evaluation;
- ``training``: SB3 training runs (config, networks, warm starts, callbacks, run folders);
- ``evaluation``: sessions played in a simulator, paired comparisons, tuning the re-rankers;
- ``policies``: everything that acts (the ``Policy`` protocol, baselines, trained agents).

The modules ``train``, ``evaluate``, ``export`` and ``adapt`` at the top are the CLIs'
``python -m agents.X`` entry points, nothing more. May import every layer below ``agents``.
"""
