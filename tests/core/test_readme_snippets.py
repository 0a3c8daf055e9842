"""The README's Python snippets compile and the marked ones run as written.

A file of its own: the runnable snippet plays the shop's default world, which takes minutes to
build on a test worker. ``make test`` (pytest-xdist's ``loadfile``) hands out the files with the
most tests first, so in the file of the README's parse tests it started beside the env checkers
that build the same world, and its worker waited on the cache's lock for minutes; a file of one
test is handed out near the end, when the world is built.
"""

from __future__ import annotations

from tests.core.test_readme import BLOCKS


def test_every_python_snippet_compiles_and_the_marked_ones_run() -> None:
    snippets = [body for language, body in BLOCKS if language == "python"]
    assert snippets
    for body in snippets:
        compile(body, "README.md", "exec")
    runnable = [body for body in snippets if "paired_difference(mine, ctr)" in body]
    assert runnable  # the "policy you trained elsewhere" how-to runs as written
    exec(compile(runnable[0], "README.md", "exec"), {"__name__": "readme"})
