"""Output paths are checked before any work: a folder where a file is due, a file where a folder
is due, or a file in the way of the folders to make, is one clear error naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.core.errors import ConfigError, check_seed
from simulators.core.storage import check_output_file, check_output_folder, write_text_atomic
from tests.conftest import run_cli


def test_output_files_and_folders_are_checked_without_creating_anything(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert check_output_file(tmp_path / "new" / "deeper" / "out.json", "--json").name == "out.json"
    assert check_output_folder(tmp_path / "new" / "run", "--out").name == "run"
    assert not (tmp_path / "new").exists()
    with pytest.raises(ConfigError, match=r"--json .*is a folder"):
        check_output_file(tmp_path, "--json")
    with pytest.raises(ConfigError, match=r"--out .*is a file, expected a folder"):
        check_output_folder(blocker, "--out")
    with pytest.raises(ConfigError, match="a_file is a file, not a folder"):
        check_output_file(blocker / "out.json", "--json")
    write_text_atomic(tmp_path / "kept.txt", "kept")
    assert (tmp_path / "kept.txt").read_text() == "kept"


@pytest.mark.parametrize("seed", [-1, 2**40, 1.5, True, "3"])
def test_seeds_out_of_range_are_config_errors(seed: object) -> None:
    with pytest.raises(ConfigError, match="must be an integer"):
        check_seed("seed", seed)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["agents.evaluate", "--policy", "ctr", "--env", "ecommerce-v0", "--json", "."],
            "--json .: is a folder",
        ),
        (["simulators.fit", "--data", "shop", "--out", "pyproject.toml"], "is a file, expected a folder"),
        (["simulators.shop", "--out", "pyproject.toml/x"], "is a file, not a folder"),
        (["agents.train", "ppo", "--seed", "-3"], "seed must be an integer"),
        (["agents.train", "ppo", "--timesteps", "256"], "less than one rollout"),
    ],
)
def test_bad_outputs_and_numbers_fail_before_any_work(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_load_or_build_builds_serves_and_rebuilds_a_damaged_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one load-or-build sequence every cache uses: an absent entry is built silently, a
    sound one served, and one whose bytes changed, whose manifest is lost or that its loader
    refuses is reported in one line and built again."""
    from simulators.core.storage import load_or_build, manifest_beside

    entry = tmp_path / "entry.txt"
    built: list[str] = []

    def build() -> str:
        built.append("x")
        entry.write_text("value")
        return "built"

    def load() -> str:
        if entry.read_text() == "refused":
            raise ValueError("its value is refused")
        return entry.read_text()

    def get() -> str:
        return load_or_build("thing", manifest_beside(entry), [entry], load, build)

    assert get() == "built" and len(built) == 1 and not capsys.readouterr().err
    assert get() == "value" and len(built) == 1  # served from the cache
    for damage, problem in (
        (lambda: entry.write_text("tampered"), "changed since it was written"),
        (lambda: manifest_beside(entry).unlink(), "no manifest"),
    ):
        damage()
        assert get() == "built"
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"warning: rebuilding the cached thing in {entry}: ")
        assert problem in err[0]
    entry.write_text("refused")
    from simulators.core.storage import write_manifest

    write_manifest(manifest_beside(entry), [entry])  # a manifest that vouches for bytes the loader refuses
    assert get() == "built" and "its value is refused" in capsys.readouterr().err
    assert get() == "value" and len(built) == 4


def _ask_for_the_entry(folder: Path) -> str:
    """A process's request for one cache entry whose build is slow and counts itself."""
    import time

    from simulators.core.storage import load_or_build, manifest_beside

    entry = folder / "entry.txt"

    def build() -> str:
        with (folder / "builds.txt").open("a") as log:
            log.write("built\n")
        time.sleep(1.0)  # long enough that the other process asks while this one builds
        entry.write_text("value")
        return "built"

    return load_or_build("thing", manifest_beside(entry), [entry], entry.read_text, build)


def test_two_processes_asking_for_one_entry_build_it_once(tmp_path: Path) -> None:
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        answers = pool.map(_ask_for_the_entry, [tmp_path, tmp_path])
    assert sorted(answers) == ["built", "value"]  # the second waited, then loaded the first's
    assert (tmp_path / "builds.txt").read_text() == "built\n"
