"""Flags derived from config dataclasses: names, types, help text, defaults and given-vs-not-given."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.core.cli import add_config_arguments, config_kwargs, field_docs, parse_config
from tests.conftest import REPO

try:
    from simulators.core.errors import ConfigError
except ImportError:  # before the move to simulators/core
    from simulators.errors import ConfigError  # type: ignore[no-redef]


@dataclass(frozen=True)
class Inner:
    """A nested config."""

    dim: int = 8
    """Size of the vectors."""
    rate: float = 0.1
    """Learning rate."""


@dataclass(frozen=True)
class Shop:
    """A small shop."""

    seed: int = 0
    """Seed of everything: catalog, users and the logs."""
    n_users: int = 100
    """Number of
    users, on two lines."""
    rate: float = 0.5
    """Click rate; ``rate`` is 100% at most."""
    name: str = "shop"
    """Name of the shop."""
    verbose: bool = False
    """Print progress."""
    target: float | None = None
    """Fixed exposure share; ``None`` = merit-based."""
    label: str | None = "a"
    """Optional label."""
    grid: tuple[float, ...] = (0.3, 0.5)
    """Candidate retentions."""
    tags: tuple[str, ...] = field(default_factory=tuple)
    """Free tags."""
    inner: Inner = field(default_factory=Inner)
    """The nested config."""

    def __post_init__(self) -> None:
        if self.n_users < 1:
            raise ConfigError(f"n_users must be at least 1, got {self.n_users}")


@dataclass(frozen=True)
class BigShop(Shop):
    """A subclass adding one field and documenting its own."""

    halls: int = 2
    """Number of halls."""


@dataclass(frozen=True)
class Odd:
    count: int = 1
    mapping: dict[str, int] = field(default_factory=dict)
    """Not a flag."""


@dataclass(frozen=True)
class Required:
    mode: str
    """Mode, no default."""


def _parser(cls: type = Shop, **kwargs: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test")
    add_config_arguments(parser, cls, **kwargs)  # type: ignore[arg-type]
    return parser


def test_field_docs_collapse_whitespace_and_backticks() -> None:
    docs = field_docs(Shop)
    assert docs["n_users"] == "Number of users, on two lines."
    assert docs["target"] == "Fixed exposure share; None = merit-based."
    assert set(docs) == {
        "seed",
        "n_users",
        "rate",
        "name",
        "verbose",
        "target",
        "label",
        "grid",
        "tags",
        "inner",
    }


def test_field_docs_through_inheritance_and_missing() -> None:
    docs = field_docs(BigShop)
    assert docs["seed"] == "Seed of everything: catalog, users and the logs."
    assert docs["halls"] == "Number of halls."
    assert field_docs(Odd) == {"count": "", "mapping": "Not a flag."}


def test_help_has_docs_and_defaults() -> None:
    text = " ".join(_parser().format_help().split())
    for doc, default in [
        ("Seed of everything: catalog, users and the logs.", "0"),
        ("Number of users, on two lines.", "100"),
        ("Click rate; rate is 100% at most.", "0.5"),
        ("Name of the shop.", "shop"),
        ("Print progress.", "False"),
        ("Fixed exposure share; None = merit-based.", "none"),
        ("Candidate retentions.", "0.3 0.5"),
        ("Free tags.", "()"),
    ]:
        assert f"{doc} (default: {default})" in text
    assert "--verbose, --no-verbose" in text
    assert text.count("(default:") == 9  # bool flags add no second default of their own


def test_not_given_yields_no_key() -> None:
    namespace = _parser().parse_args([])
    assert config_kwargs(namespace, Shop) == {}
    assert Shop(**config_kwargs(namespace, Shop)) == Shop()


def test_given_values_and_replace() -> None:
    argv = ["--seed", "3", "--n-users", "7", "--name", "x", "--grid", "0.1", "0.2", "0.7", "--tags", "a", "b"]
    kwargs = config_kwargs(_parser().parse_args(argv), Shop)
    assert kwargs == {"seed": 3, "n_users": 7, "name": "x", "grid": (0.1, 0.2, 0.7), "tags": ("a", "b")}
    base = Shop(rate=0.9, label="kept")
    assert replace(base, **kwargs) == Shop(
        seed=3, n_users=7, rate=0.9, name="x", label="kept", grid=(0.1, 0.2, 0.7), tags=("a", "b")
    )


def test_bool_on_and_off() -> None:
    assert parse_config(Shop, ["--verbose"]).verbose is True
    assert parse_config(Shop, ["--no-verbose"]).verbose is False
    assert parse_config(Shop, [], defaults={"verbose": True}).verbose is True
    assert parse_config(Shop, ["--no-verbose"], defaults={"verbose": True}).verbose is False


def test_optional_accepts_none() -> None:
    assert parse_config(Shop, ["--target", "0.25"]).target == 0.25
    assert parse_config(Shop, ["--label", "None"]).label is None
    assert config_kwargs(_parser().parse_args(["--label", "NONE"]), Shop) == {"label": None}
    assert parse_config(Shop, ["--target", "none"]).target is None


def test_nested_field_skipped_and_added_with_prefixes() -> None:
    parser = argparse.ArgumentParser()
    assert "inner" not in add_config_arguments(parser, Shop)
    assert add_config_arguments(parser, Inner, dest_prefix="inner_", flag_prefix="inner-") == [
        "inner_dim",
        "inner_rate",
    ]
    namespace = parser.parse_args(["--rate", "0.2", "--inner-rate", "0.01", "--inner-dim", "4"])
    inner = Inner(**config_kwargs(namespace, Inner, dest_prefix="inner_"))
    shop = Shop(**config_kwargs(namespace, Shop), inner=inner)
    assert shop == Shop(rate=0.2, inner=Inner(dim=4, rate=0.01))


def test_flags_rename_and_skip() -> None:
    parser = _parser(flags={"n_users": "--users"}, skip=["seed"])
    assert config_kwargs(parser.parse_args(["--users", "5"]), Shop) == {"n_users": 5}
    with pytest.raises(SystemExit):
        parser.parse_args(["--n-users", "5"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--seed", "5"])


def test_two_configs_on_one_group_with_flags() -> None:
    parser = argparse.ArgumentParser()
    group = parser.add_argument_group("net")
    add_config_arguments(parser, Inner)
    add_config_arguments(group, Inner, dest_prefix="b_", flags={"dim": "--b-dim", "rate": "--b-rate"})
    namespace = parser.parse_args(["--dim", "2", "--b-dim", "3"])
    assert config_kwargs(namespace, Inner) == {"dim": 2}
    assert config_kwargs(namespace, Inner, dest_prefix="b_") == {"dim": 3}


def test_defaults_override_help_and_value() -> None:
    parser = _parser(defaults={"n_users": 42, "label": None, "grid": [0.9]})
    assert "(default: 42)" in parser.format_help()
    assert parse_config(Shop, [], defaults={"n_users": 42, "label": None, "grid": [0.9]}) == Shop(
        n_users=42, label=None, grid=(0.9,)
    )
    assert parse_config(Shop, ["--n-users", "3"], defaults={"n_users": 42}).n_users == 3


def test_choices() -> None:
    parser = _parser(choices={"name": ["shop", "mall"], "label": ["a", "b"]})
    assert config_kwargs(parser.parse_args(["--name", "mall", "--label", "none"]), Shop) == {
        "name": "mall",
        "label": None,
    }
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--name", "market"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400", "abc"])
def test_bad_float_exits_2(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_config(Shop, [f"--rate={text}"], prog="shop")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --rate") and len(err.strip().splitlines()) == 1
    assert "(see shop --help)" in err
    assert ("must be a finite number" if text != "abc" else "invalid float value: 'abc'") in err


def test_bad_int_exits_2() -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_config(Shop, ["--seed", "1.5"])
    assert exit_info.value.code == 2


def test_config_validation_propagates() -> None:
    with pytest.raises(ConfigError, match="n_users"):
        parse_config(Shop, ["--n-users", "0"])


def test_required_field_without_default() -> None:
    assert parse_config(Required, ["--mode", "fast"]) == Required(mode="fast")
    assert parse_config(Required, [], defaults={"mode": "slow"}) == Required(mode="slow")
    with pytest.raises(SystemExit):
        parse_config(Required, [])


def test_unsupported_type_and_unknown_names_raise_type_error() -> None:
    with pytest.raises(TypeError, match=r"Odd\.mapping.*dict\[str, int\]"):
        _parser(Odd)
    assert parse_config(Odd, ["--count", "4"], skip=["mapping"]) == Odd(count=4)
    with pytest.raises(TypeError, match="n_user"):
        _parser(flags={"n_user": "--users"})


def test_subclass_gets_all_fields() -> None:
    assert parse_config(BigShop, ["--halls", "5", "--seed", "1"]) == BigShop(halls=5, seed=1)
    assert "Number of halls. (default: 2)" in _parser(BigShop).format_help()


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float_round_trips(value: float) -> None:
    rate = parse_config(Shop, [f"--rate={value!r}"]).rate
    assert rate == value and math.copysign(1.0, rate) == math.copysign(1.0, value)


@given(st.integers())
def test_any_int_round_trips(value: int) -> None:
    assert parse_config(Shop, [f"--seed={value}"]).seed == value


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=0), min_size=1))
def test_float_tuples_round_trip(values: list[float]) -> None:
    assert parse_config(Shop, ["--grid", *map(repr, values)]).grid == tuple(values)


CLI_MODULES = (
    "agents.training.train", "agents.evaluation.evaluate", "agents.serve.export", "agents.ope.__main__", "simulators.fit.__main__",
    "simulators.shop.__main__", "encoders.ctr.__main__", "encoders.text", "benchmarks.env_speed",
    "benchmarks.fairness", "benchmarks.foundation", "benchmarks.gpu_check", "benchmarks.heterogeneity",
    "benchmarks.ope_accuracy", "benchmarks.own_logs", "benchmarks.policies", "agents.serve.__main__",
    "benchmarks.serving", "benchmarks.drift", "agents.studies.adapt.__main__", "benchmarks.ray_scaling",
    "benchmarks.headroom",
    "benchmarks.train_speed", "benchmarks.counterfactual", "benchmarks.temperature", "benchmarks.returns", "benchmarks.carryover",
    "benchmarks.retention", "agents.training.distill", "benchmarks.distill", "benchmarks.td_signal",
    "benchmarks.identification", "benchmarks.log_size",
)  # fmt: skip
"""Every module with a ``@cli_entry`` main (``test_the_cli_list_is_complete`` keeps it complete)."""


def _parsers_of(module_name: str) -> list[argparse.ArgumentParser]:
    """The parser a CLI's ``main`` builds (and its sub-command parsers), captured at ``--help``."""
    import importlib
    from unittest import mock

    captured: list[argparse.ArgumentParser] = []

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        captured.append(self)
        raise SystemExit(0)

    module = importlib.import_module(module_name)
    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture), pytest.raises(SystemExit):
        module.main(["--help"])
    parsers = list(captured)
    for parser in captured:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
    return parsers


@pytest.mark.parametrize("module_name", CLI_MODULES)
def test_every_flag_of_every_cli_has_help(module_name: str) -> None:
    for parser in _parsers_of(module_name):
        bare = [a.option_strings or [a.dest] for a in parser._actions if not (a.help or "").strip()]
        assert not bare, f"{parser.prog}: flags without help: {bare}"


def test_the_cli_list_is_complete() -> None:
    listed = {name.removesuffix(".__main__") for name in CLI_MODULES}
    found = {
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__main__")
        for top in ("agents", "envs", "encoders", "simulators", "benchmarks")
        for path in (REPO / top).rglob("*.py")
        if "@cli_entry" in path.read_text()
    }
    assert found == listed
