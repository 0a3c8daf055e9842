"""Representations: BERT item-text embeddings (``text``), the LSTM user encoder (``sequence``),
the item and user towers every network shares (``towers``), the one supervised training loop
(``training``, ``optimiser``), the device choice (``device``) and the CTR model (``ctr``).
Imports the data layer of ``simulators`` (and the shop, for the CTR CLI's ground truth), never
the fit, the environments or the agents.
"""
