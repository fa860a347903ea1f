"""The ``banet-ops`` console script (DESIGN §4).

Each command group lives in its own module with a ``register(subparsers)`` function; every
handler takes the parsed namespace and returns an exit code.  Errors print one line and exit
non-zero (75 when retrying may help, 66 when there is not enough input data, 1 otherwise); ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence

from banet_ops import __version__
from banet_ops.errors import BanetError, InsufficientDataError, is_retryable

EXIT_PERMANENT = 1
EXIT_RETRYABLE = 75  # EX_TEMPFAIL: the orchestrator may retry
EXIT_INSUFFICIENT_DATA = 66  # EX_NOINPUT: not enough input data (InsufficientDataError); the DAGs skip the run

# One module per command group; each owns its sub-commands.
COMMAND_MODULES = (
    "stack",
    "db",
    "regions",
    "ingest",
    "cube",
    "infer",
    "retrain",
    "demo",
    "serve",
    "bakeoff",
    "backfill",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="banet-ops", description="Daily burned-area mapping and dating with BA-Net.")
    parser.add_argument("--version", action="version", version=f"banet-ops {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks on error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"banet_ops.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("numexpr").setLevel(logging.WARNING)  # "defaulting to N threads" is not the user's news
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():  # log lines go above the progress bars, not through them
            return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("banet-ops: interrupted", file=sys.stderr)
        return 130
    except (BanetError, OSError, ValueError) as exc:
        if args.verbose:
            traceback.print_exc()
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"banet-ops: error: {reason}", file=sys.stderr)
        if isinstance(exc, InsufficientDataError):
            return EXIT_INSUFFICIENT_DATA
        return EXIT_RETRYABLE if is_retryable(exc) else EXIT_PERMANENT


def run() -> None:
    """Entry point of the console script."""
    sys.exit(main())
