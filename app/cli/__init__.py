"""The `surglens` command line. Each area registers its subcommands from its own module."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

# Modules with a `register(subparsers)` function; each adds its subcommands.
COMMAND_MODULES = (
    "app.cli.video", "app.cli.detector", "app.cli.phase", "app.cli.diagnosis", "app.cli.volume", "app.cli.library",
    "app.cli.serve", "app.cli.batch", "app.cli.anatomy", "app.cli.live",
)


class CLIError(Exception):
    """A failure to report as one line on stderr with a non-zero exit code."""


def positive_float(value: str) -> float:
    """argparse type: a positive number, with the bad value quoted in the error."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value!r}")
    return number


def positive_int(value: str) -> int:
    """argparse type: a whole number of at least 1, with the bad value quoted in the error."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}")
    return number


def emit_json(result: dict, out: str | Path | None = None) -> None:
    """Print `result` as indented JSON and, with `out`, also write it there (its folder made)."""
    text = json.dumps(result, indent=2)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    print(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="surglens", description="Laparoscopic surgery video analysis.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `surglens` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("surglens: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, no traceback, for any expected failure
        if isinstance(exc, (CLIError, ValueError, OSError, RuntimeError, KeyError)) or \
                type(exc).__module__.startswith("sqlalchemy."):  # e.g. the library database is unreachable
            from library.config import mask_password  # a database error may quote SURGLENS_DB_URL

            print(f"surglens {args.command}: error: {mask_password(str(exc))}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
