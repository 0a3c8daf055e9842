"""Policies, the top layer: static baselines, trained SB3 agents (``config``, ``networks``,
``warm_start``, ``callbacks``, ``train``, ``report``, ``agent``), online evaluation
(``evaluate``) and off-policy evaluation (``ope``). May import every layer below."""
