"""Measuring policies in a simulator: sessions played on the same users for every policy
(``sessions``), paired comparisons with their confidence intervals (``paired``), the comparison
table (``report``), the re-rankers tuned in the fitted simulator (``tuning``), policies by name
(``load``), the oracle-adaptive reference (``oracle``) and ``python -m agents.evaluate``
(``evaluate``). Imports ``agents.policies`` and the layers below; never training or studies.
"""
