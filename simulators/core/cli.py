"""RecGym's command lines: the one wrapper every CLI's ``main`` wears (:func:`cli_entry`), and
flags derived from frozen config dataclasses (names, types, help from the field docstrings,
defaults). A config's own ``ConfigError`` from ``__post_init__`` passes through to the wrapper.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import itertools
import math
import re
import sys
import textwrap
import typing
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from simulators.core.errors import EXIT_USER_ERROR, DataWarning, RecGymError
from simulators.core.install import check_installation

T = TypeVar("T")


class ArgumentParser(argparse.ArgumentParser):
    """:class:`argparse.ArgumentParser` whose usage errors are one line on stderr, exit code 2
    (like every other user error of RecGym's CLIs), pointing at ``--help`` for the usage."""

    def error(self, message: str) -> typing.NoReturn:
        """Print ``error: MESSAGE (see PROG --help)`` and exit with code 2."""
        self.exit(EXIT_USER_ERROR, f"error: {message} (see {self.prog} --help)\n")


class _NoneGiven:
    """Marks a ``X | None`` flag given as ``none`` (``None`` itself means "not given")."""

    def __repr__(self) -> str:
        return "none"


_NONE = _NoneGiven()


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("must be a finite number")
    return value


_SCALARS: dict[str, Callable[[str], Any]] = {"int": int, "float": _finite_float, "str": str}
_OPTIONAL = re.compile(r"^(?:(\w+) \| None|None \| (\w+)|Optional\[(\w+)\])$")
_ROLE = re.compile(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`")
"""An RST cross-reference (``:class:`~a.b.C` `` -> ``C``), shown as its plain name in help."""
_TUPLE = re.compile(r"^tuple\[(\w+), \.\.\.\]$")


def _or_none(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_optional(text: str) -> Any:
        return _NONE if text.strip().lower() == "none" else parse(text)

    parse_optional.__name__ = getattr(parse, "__name__", "value")  # argparse names it in errors
    return parse_optional


def _type_name(tp: Any) -> str:
    if isinstance(tp, str):
        return " ".join(tp.split())
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _is_nested(cls: type, f: dataclasses.Field[Any]) -> bool:
    """Whether ``f`` holds another config dataclass (added by its own call, with a prefix)."""
    if dataclasses.is_dataclass(f.type) or dataclasses.is_dataclass(f.default):
        return True
    if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
        return True
    name = _type_name(f.type)
    return any(
        dataclasses.is_dataclass(getattr(sys.modules.get(c.__module__), name, None)) for c in cls.__mro__
    )


def _type_options(cls: type, f: dataclasses.Field[Any], choices: Sequence[str] | None) -> dict[str, Any]:
    """``type``/``action``, ``nargs`` and ``choices`` of the flag of field ``f``."""
    kind = _type_name(f.type)
    optional, tuple_of = _OPTIONAL.match(kind), _TUPLE.match(kind)
    if kind == "bool":
        return {"action": argparse.BooleanOptionalAction}
    base = tuple_of[1] if tuple_of else next(g for g in optional.groups() if g) if optional else kind
    if base not in _SCALARS:
        raise TypeError(f"{cls.__name__}.{f.name}: no command-line flag for type {kind!r}")
    parse = _or_none(_SCALARS[base]) if optional else _SCALARS[base]
    options: dict[str, Any] = {"type": parse, "nargs": "+" if tuple_of else None}
    if choices is not None:
        options["choices"] = [parse(c) for c in choices] + ([_NONE] if optional else [])
    return options


def _shown(value: Any) -> str | None:
    """The default as a user would type it, or ``None`` when it is no plain value."""
    if value is None:
        return "none"
    if isinstance(value, tuple) and all(isinstance(v, int | float | str) for v in value):
        return " ".join(map(str, value)) if value else "()"
    if isinstance(value, bool | int | float | str):
        return str(value) if value != "" else "''"
    return None


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstring of each field of ``cls`` (``""`` when missing), bases included.

    Whitespace is collapsed and RST double backticks are dropped; a subclass's doc wins over its base's.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue  # builtins, or a class without source
        body = next((n.body for n in tree.body if isinstance(n, ast.ClassDef)), [])
        for node, after in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(_ROLE.sub(r"\1", after.value.value).replace("``", "").split())
    return {f.name: docs.get(f.name, "") for f in dataclasses.fields(cls)}


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    skip: Collection[str] = (),
    flags: Mapping[str, str | tuple[str, ...]] | None = None,
    defaults: Mapping[str, Any] | None = None,
    choices: Mapping[str, Sequence[str]] | None = None,
    dest_prefix: str = "",
    flag_prefix: str = "",
) -> list[str]:
    """Add one flag per field of the dataclass ``cls``; return the ``dest`` names added.

    A field ``n_users`` becomes ``--{flag_prefix}n-users`` (or ``flags["n_users"]``: one flag or a
    tuple of aliases) with ``dest``
    ``dest_prefix + "n_users"``. ``int``, ``float`` (finite), ``str``, ``bool`` (``--x/--no-x``),
    ``X | None`` (``none`` gives ``None``) and ``tuple[X, ...]`` (one or more values) are supported;
    nested dataclass fields, ``init=False`` fields and ``skip`` are left out. ``defaults`` overrides
    the dataclass default, in the help and in the value used. Any other type raises ``TypeError``.
    """
    flags, defaults, choices = flags or {}, defaults or {}, choices or {}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted({*skip, *flags, *defaults, *choices} - names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    docs, added = field_docs(cls), []
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init or _is_nested(cls, f):
            continue
        options = _type_options(cls, f, choices.get(f.name))
        if f.name in defaults:
            default = defaults[f.name]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()  # only shown: the dataclass calls it again itself
        else:
            default = dataclasses.MISSING
        shown = None if default is dataclasses.MISSING else _shown(default)
        help_text = docs[f.name] if shown is None else f"{docs[f.name]} (default: {shown})".lstrip()
        dest = dest_prefix + f.name
        flag = flags.get(f.name, f"--{flag_prefix}{f.name.replace('_', '-')}")
        flag_names = (flag,) if isinstance(flag, str) else tuple(flag)
        required = default is dataclasses.MISSING
        if "choices" not in options and options.get("action") is not argparse.BooleanOptionalAction:
            options.setdefault("metavar", f.name.upper())
        action = parser.add_argument(
            *flag_names,
            dest=dest,
            default=None,
            required=required,
            help=help_text.replace("%", "%%"),
            **options,
        )
        if f.name in defaults:  # set after construction so no action appends its own default to the help
            action.default = _NONE if default is None else default
        added.append(dest)
    return added


def config_kwargs(namespace: argparse.Namespace, cls: type, *, dest_prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (or by ``defaults``), keyed by field name.

    A flag not given is left out, so ``cls(**config_kwargs(ns, cls))`` keeps the dataclass default,
    and ``dataclasses.replace(base, **config_kwargs(ns, cls))`` keeps the value of ``base``.
    """
    given: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = getattr(namespace, dest_prefix + f.name, None)
        if value is not None and f.init:
            given[f.name] = None if value is _NONE else tuple(value) if isinstance(value, list) else value
    return given


def parse_config(
    cls: type[T],
    argv: Sequence[str] | None = None,
    *,
    prog: str | None = None,
    description: str | None = None,
    **kwargs: Any,
) -> T:
    """Parse ``argv`` (default ``sys.argv[1:]``) into a ``cls``; ``kwargs`` go to :func:`add_config_arguments`.

    A bad value exits with code 2 and a usage line; the config's own validation errors propagate.
    """
    parser = ArgumentParser(prog=prog, description=description)
    add_config_arguments(parser, cls, **kwargs)
    namespace = parser.parse_args(argv)
    return cls(**config_kwargs(namespace, cls, dest_prefix=kwargs.get("dest_prefix", "")))


F = TypeVar("F", bound=Callable[..., object])
_SHOW_WARNING = warnings.showwarning


def _show_data_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """A :class:`DataWarning` as one ``warning: ...`` line on stderr; other warnings as Python shows them."""
    if issubclass(category, DataWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _SHOW_WARNING(message, category, *args, **kwargs)


def cli_entry(main: F) -> F:
    """Wrap a CLI ``main``: check the installation first, then turn a :class:`RecGymError` into
    one line on stderr and exit code 2 (bugs still raise)."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            check_installation()
            with warnings.catch_warnings():
                warnings.showwarning = _show_data_warning
                return main(*args, **kwargs)
        except RecGymError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]
