"""Representations: BERT item-text embeddings, the LSTM user encoder and the CTR model.

Import submodules directly (``encoders.text``, ``encoders.sequence``).
"""
