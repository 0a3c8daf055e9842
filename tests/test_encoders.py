"""Text encoders (real MiniLM weights, offline) and the LSTM user encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from encoders.sequence import LSTMUserEncoder
from encoders.text import HashingTextEncoder, TextEncoder, TextEncoderConfig, item_embeddings
from simulators.core.errors import ConfigError
from simulators.datasets import load_logs
from tests.conftest import SMALL_SHOP, run_cli

NEAR_A = "Nordvik Classic Navy Cotton Oxford Shirt"
NEAR_B = "Nordvik Classic Navy Cotton Oxford Shirt, slim fit"
UNRELATED = "Brewster stainless steel espresso machine with milk frother"


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder(TextEncoderConfig(device="cpu"))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_minilm_near_identical_titles_are_closer(minilm: TextEncoder) -> None:
    a, b, c = minilm.encode([NEAR_A, NEAR_B, UNRELATED])
    assert a.shape == (384,)
    assert _cosine(a, b) > 0.8
    assert _cosine(a, b) > _cosine(a, c) + 0.3


def test_minilm_matches_sentence_transformers(minilm: TextEncoder) -> None:
    """Our mean pooling reproduces the reference implementation on the same weights."""
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from encoders.text import default_model_path

    reference = sentence_transformers.SentenceTransformer(default_model_path(), device="cpu")
    texts = [NEAR_A, UNRELATED, "short"]
    expected = reference.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(minilm.encode(texts), expected, atol=1e-4)


def test_minilm_on_the_shop_catalog_and_its_cache(minilm: TextEncoder) -> None:
    logs = load_logs("shop", config=SMALL_SHOP)
    first = item_embeddings(logs, minilm)
    assert not minilm.last_from_cache
    assert first.shape == (SMALL_SHOP.n_items, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    second = item_embeddings(logs, minilm)
    assert minilm.last_from_cache
    np.testing.assert_array_equal(first, second)
    # Same category closer than different category, on average (the text carries the category).
    category = logs.items["category"].to_numpy()
    sims = first @ first.T
    same = sims[category[:, None] == category[None, :]].mean()
    other = sims[category[:, None] != category[None, :]].mean()
    assert same > other + 0.1


def test_cache_key_depends_on_the_text(minilm: TextEncoder) -> None:
    minilm.encode(["alpha item"])
    minilm.encode(["beta item"])
    assert not minilm.last_from_cache


def test_float16_storage_round_trips_closely() -> None:
    encoder = TextEncoder(TextEncoderConfig(device="cpu", store_float16=True, max_length=64))
    fresh = encoder.encode([NEAR_A, UNRELATED])
    cached = encoder.encode([NEAR_A, UNRELATED])
    assert encoder.last_from_cache and cached.dtype == np.float32
    np.testing.assert_allclose(fresh, cached, atol=2e-3)


def test_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load text model"):
        TextEncoder(TextEncoderConfig(model=str(tmp_path / "no-model"), use_cache=False)).encode(["x"])


def test_hashing_encoder_is_deterministic_and_similarity_aware() -> None:
    encoder = HashingTextEncoder(dim=128)
    a, b, c = encoder.encode([NEAR_A, NEAR_B, UNRELATED])
    np.testing.assert_array_equal(a, HashingTextEncoder(dim=128).encode([NEAR_A])[0])
    assert _cosine(a, b) > _cosine(a, c)
    assert not encoder.encode([""]).any()


def test_text_cli(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    from simulators.shop.world import write_shop

    write_shop(SMALL_SHOP, shop)
    result = run_cli("encoders.text", "--data", str(shop), "--out", str(tmp_path / "emb"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    table = np.load(tmp_path / "emb" / "item_embeddings.npz")
    assert table["embedding"].shape == (SMALL_SHOP.n_items, 384)


def test_text_cli_unknown_data_is_one_line(tmp_path: Path) -> None:
    result = run_cli("encoders.text", "--data", "nowhere", "--out", str(tmp_path))
    assert result.returncode == 2 and "unknown dataset 'nowhere'" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0


# ------------------------------------------------------------------------------ LSTM encoder
def _encoder(seed: int = 0) -> LSTMUserEncoder:
    torch.manual_seed(seed)
    table = np.random.default_rng(0).normal(size=(30, 16)).astype(np.float32)
    return LSTMUserEncoder(table, projection_dim=8, hidden_dim=12, out_dim=6)


def test_lstm_shapes_and_empty_history() -> None:
    encoder = _encoder()
    ids = torch.tensor([[1, 2, 3, 0], [0, 0, 0, 0], [5, -1, -1, -1]])
    mask = torch.tensor([[1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    out = encoder(ids, mask)
    assert out.shape == (3, 6) and torch.isfinite(out).all()
    empty = encoder(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.bool))
    torch.testing.assert_close(out[1:2], empty)


def test_lstm_ignores_masked_entries_wherever_they_are() -> None:
    encoder = _encoder()
    compact = encoder(torch.tensor([[4, 7, 9, 0, 0]]), torch.tensor([[1, 1, 1, 0, 0]], dtype=torch.bool))
    scattered = encoder(torch.tensor([[13, 4, 22, 7, 9]]), torch.tensor([[0, 1, 0, 1, 1]], dtype=torch.bool))
    torch.testing.assert_close(compact, scattered)
    reordered = encoder(torch.tensor([[9, 7, 4, 0, 0]]), torch.tensor([[1, 1, 1, 0, 0]], dtype=torch.bool))
    assert not torch.allclose(compact, reordered), "order matters to an LSTM"


def test_lstm_table_is_frozen_and_not_in_state_dict() -> None:
    encoder = _encoder()
    assert "item_table" not in encoder.state_dict()
    ids, mask = torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=torch.bool)
    encoder(ids, mask).sum().backward()
    assert encoder.project.weight.grad is not None
    assert not encoder.item_table.requires_grad
    clone = _encoder(seed=1)
    clone.load_state_dict(encoder.state_dict())
    torch.testing.assert_close(clone(ids, mask), encoder(ids, mask))


def test_lstm_rejects_bad_shapes() -> None:
    with pytest.raises(ConfigError):
        _encoder()(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ConfigError):
        LSTMUserEncoder(np.zeros((0, 4)))
