"""``python -m agents.adapt`` (also ``python -m agents.studies.adapt``): check the options, then
run (or resume) the weekly loop of :mod:`agents.studies.adapt`."""

from __future__ import annotations

from agents.studies.adapt import __doc__ as ADAPT_DOC
from agents.studies.adapt.config import AdaptConfig
from agents.studies.adapt.loop import adapt
from agents.studies.adapt.report import markdown, pooled_markdown
from agents.studies.backend import add_backend_arguments, backend_of
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.storage import check_output_folder


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Check the options, then run (or resume) the weekly loop."""
    parser = ArgumentParser(
        prog="python -m agents.adapt", description=(ADAPT_DOC or "").strip().splitlines()[0]
    )
    add_config_arguments(parser, AdaptConfig)
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last finished week"
    )
    add_backend_arguments(parser)
    args = parser.parse_args(argv)
    config = AdaptConfig(**config_kwargs(args, AdaptConfig))
    backend = backend_of(args)
    check_output_folder(config.out, "--out")
    report = adapt(config, resume=args.resume, backend=backend)
    pooled = report.get("pooled")
    print(pooled_markdown(pooled) if pooled else markdown(report["weeks"], report["recovery"]))


if __name__ == "__main__":
    main()
