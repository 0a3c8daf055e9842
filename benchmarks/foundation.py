"""Foundation figures: shop generation, BERT catalog encoding, the cache speed-up, LSTM users/s.

``python -m benchmarks.foundation --json FILE [--quick]`` runs the whole data-to-encoding
pipeline on the embedded shop and writes what it measured (JSON + a markdown table).
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from encoders.sequence import LSTMUserEncoder
from encoders.text import TextEncoder, TextEncoderConfig, item_embeddings
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.storage import check_output_file, write_text_atomic
from simulators.shop.config import ShopConfig
from simulators.shop.files import write_shop

HISTORY_LENGTH = 20


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run(config: ShopConfig, device: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Measure every stage once, in a fresh cache folder, and return the figures."""
    figures: dict[str, Any] = {"shop_config": asdict(config), "torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="recgym-bench-") as scratch:
        previous = os.environ.get("RECGYM_CACHE")
        os.environ["RECGYM_CACHE"] = scratch
        try:
            (logs, _), seconds = _timed(lambda: write_shop(config, Path(scratch) / "shop"))
            figures["shop_generation_s"] = round(seconds, 3)
            figures["shop"] = logs.summary()
            files = Path(scratch, "shop").iterdir()
            figures["shop_files_mib"] = round(sum(p.stat().st_size for p in files) / 2**20, 2)
            encoder = TextEncoder(TextEncoderConfig(device=device))
            encoder.encode(["warm-up: load the weights"])  # loading is not encoding
            cold, cold_s = _timed(lambda: item_embeddings(logs, encoder, progress=True))
            _, warm_s = _timed(lambda: item_embeddings(logs, encoder))
            assert encoder.last_from_cache
            figures["bert_model"] = encoder.model_name
            figures["bert_device"] = str(encoder.device)
            figures["bert_items_per_s"] = round(len(cold) / cold_s, 1)
            figures["bert_cold_s"] = round(cold_s, 3)
            figures["bert_cached_s"] = round(warm_s, 5)
            figures["bert_cache_speedup"] = round(cold_s / warm_s, 1)
            torch.manual_seed(seed)
            lstm = LSTMUserEncoder(cold, projection_dim=64, hidden_dim=64).eval()
            items, mask = logs.padded_histories(HISTORY_LENGTH)
            with torch.inference_mode():
                users, lstm_s = _timed(lambda: lstm(torch.from_numpy(items), torch.from_numpy(mask)))
            figures["lstm_users"] = int(users.shape[0])
            figures["lstm_users_per_s"] = round(users.shape[0] / lstm_s, 1)
            figures["users_with_history_share"] = round(float(mask.any(axis=1).mean()), 4)
            split = logs.split_by_time(0.1, 0.1)
            figures["time_split_rows"] = [len(part.interactions) for part in split]
        finally:
            if previous is None:
                os.environ.pop("RECGYM_CACHE", None)
            else:
                os.environ["RECGYM_CACHE"] = previous
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


def markdown(figures: dict[str, Any]) -> str:
    """A short table of the headline figures."""
    shop = figures["shop"]
    rows = [
        ("shop generation (s)", figures["shop_generation_s"]),
        (
            "logged rows / sessions / users / items",
            f"{shop['interactions']} / {shop['sessions']} / {shop['users']} / {shop['items']}",
        ),
        ("click rate / purchase rate", f"{shop['click_rate']:.4f} / {shop.get('purchase_rate', 0):.4f}"),
        ("BERT items/s (" + figures["bert_device"] + ")", figures["bert_items_per_s"]),
        ("BERT cache speed-up (cold / cached)", figures["bert_cache_speedup"]),
        ("LSTM users/s (history 20)", figures["lstm_users_per_s"]),
        ("peak RSS (MiB)", figures["peak_rss_mib"]),
    ]
    lines = ["| figure | value |", "| --- | --- |", *(f"| {name} | {value} |" for name, value in rows)]
    return "\n".join(lines) + "\n"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Parse flags, run, write JSON and markdown, print the table."""
    parser = ArgumentParser(prog="python -m benchmarks.foundation", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures")
    parser.add_argument("--quick", action="store_true", help="a small shop (seconds, for smoke tests)")
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="where BERT runs (default: auto)"
    )
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json", beside=(".md", ".png"))
    config = ShopConfig(n_users=500, n_items=150, n_sessions=800) if args.quick else ShopConfig()
    figures = run(config, device=args.device)
    write_text_atomic(args.json, json.dumps(figures, indent=2) + "\n")
    table = markdown(figures)
    write_text_atomic(args.json.with_suffix(".md"), table)
    print(table)
    print(f"wrote {args.json} and {args.json.with_suffix('.md')}")


if __name__ == "__main__":
    main()
