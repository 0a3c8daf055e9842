"""Training SB3 agents: the run's configuration (``config``), the policy network (``networks``),
warm starts (``warm_start``), atomic callbacks (``callbacks``), the run folder (``run_folder``),
the learning curve (``curves``) and ``python -m agents.train`` (``train``). Imports
``agents.evaluation`` (a run is compared with the baselines) and ``agents.policies``.
"""
