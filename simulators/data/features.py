"""Numeric feature matrices of the catalog and the users, for every learned model.

Part of the data layer: reads :class:`~simulators.data.logs.LoggedData` tables, imports numpy
and pandas only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from simulators.data.logs import LoggedData


def attribute_matrix(table: pd.DataFrame, skip: Sequence[str] = (), max_levels: int = 64) -> np.ndarray:
    """One-hot encode every categorical column with at most ``max_levels`` values.

    ``(rows, n_features)`` float32; numeric columns are standardised; columns in ``skip`` and
    categorical columns with more levels are left out.
    """
    blocks = [np.zeros((len(table), 0), dtype=np.float32)]
    for column in table.columns:
        if column in skip:
            continue
        values = table[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            x = values.to_numpy(dtype=np.float64)
            blocks.append(((x - x.mean()) / (x.std() + 1e-9)).astype(np.float32)[:, None])
        elif values.nunique() <= max_levels:
            codes, levels = pd.factorize(values.astype(str), sort=True)
            blocks.append(np.eye(len(levels), dtype=np.float32)[codes])
    return np.concatenate(blocks, axis=1)


def user_feature_matrix(users: pd.DataFrame, max_levels: int = 64) -> np.ndarray:
    """The users' attributes (:func:`attribute_matrix` without ``user_id``), ``(n_users, F)``;
    one constant 0 column when they have none (an observation needs a non-empty vector)."""
    matrix = attribute_matrix(users, ("user_id",), max_levels)
    return matrix if matrix.shape[1] else np.zeros((len(users), 1), dtype=matrix.dtype)


_WORD = re.compile(r"[a-z]+")


def text_word_matrix(texts: Sequence[str], min_texts: int = 3, max_share: float = 0.5) -> np.ndarray:
    """``(n_texts, V)`` float32 bag of words (1 where the text has the word): the words (letters,
    lower case) found in at least ``min_texts`` texts and at most ``max_share`` of them.

    The sparse companion of a dense text embedding: a linear layer over it learns one effect
    per word (a colour, a style, a material), which a projection of BERT blurs.
    """
    docs = [set(_WORD.findall(str(text).lower())) for text in texts]
    counts: dict[str, int] = {}
    for doc in docs:
        for word in doc:
            counts[word] = counts.get(word, 0) + 1
    vocabulary = sorted(w for w, c in counts.items() if min_texts <= c <= max_share * len(docs))
    column = {word: j for j, word in enumerate(vocabulary)}
    out = np.zeros((len(docs), len(vocabulary)), dtype=np.float32)
    for row, doc in enumerate(docs):
        out[row, [column[w] for w in doc if w in column]] = 1.0
    return out


def item_feature_matrix(logs: LoggedData, shown_in: LoggedData) -> np.ndarray:
    """``(n_items, F)`` float32 side features of ``logs``' catalog: the items table's attributes
    (:func:`attribute_matrix` without id, text and ``launch_day``: when an item goes on sale is
    not what it is, and the logs hold one launch day only), the words of the item text
    (:func:`text_word_matrix`) and the standardised log count of each item's impressions in
    ``shown_in`` (how much the logging policy showed it; pass the training part of a split).
    """
    items = logs.items
    attributes = attribute_matrix(items, ("item_id", "text", "launch_day"))
    words = text_word_matrix(items["text"].astype(str).tolist())
    shown = np.log1p(np.bincount(logs.item_rows(shown_in.interactions["item_id"]), minlength=logs.n_items))
    shown = ((shown - shown.mean()) / (shown.std() + 1e-9)).astype(np.float32)
    return np.concatenate([attributes, words, shown[:, None]], axis=1)
