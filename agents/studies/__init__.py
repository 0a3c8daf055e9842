"""Studies that combine training, serving and evaluation over many trials: where trials run
(``backend``: serial or Ray) and continuous optimisation (``adapt``: ``python -m agents.adapt``).
May import every other room of ``agents``; nothing in ``agents`` imports a study.
"""
