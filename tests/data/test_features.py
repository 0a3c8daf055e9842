"""simulators.data.features: the word matrix of item texts and the item feature matrix."""

from __future__ import annotations

import numpy as np

from simulators.data.features import attribute_matrix, item_feature_matrix, text_word_matrix
from tests.conftest import tiny_logs


def test_text_word_matrix_keeps_words_in_enough_texts_and_not_too_many() -> None:
    texts = ["Red shoe, size 3", "blue shoe", "red lamp", "the red vase", "the blue bowl"]
    words = text_word_matrix(texts, min_texts=2, max_share=0.5)
    # red: 3 of 5 texts (over half), shoe/blue/the: 2 each (kept), the rest: 1 (dropped)
    assert words.shape == (5, 3) and words.dtype == np.float32
    np.testing.assert_array_equal(words.sum(axis=0), [2, 2, 2])
    np.testing.assert_array_equal(words[1], [1, 1, 0])  # "blue shoe": blue, shoe (sorted vocabulary)


def test_item_feature_matrix_has_attributes_words_and_exposure() -> None:
    logs = tiny_logs()
    features = item_feature_matrix(logs, logs)
    provider = attribute_matrix(logs.items, ("item_id", "text"))
    assert provider.shape == (3, 2)  # one-hot of the provider
    assert features.shape == (3, 2 + text_word_matrix(logs.items["text"].tolist()).shape[1] + 1)
    shown = features[:, -1]  # every item was shown twice
    assert shown[0] == shown[1] == shown[2]
    later = item_feature_matrix(
        logs, logs.with_interactions(logs.interactions[logs.interactions["session_id"] == 8])
    )
    assert later[0, -1] < later[1, -1] == later[2, -1]
