"""`banet-ops stack start|stop|status`: the embedded local PostGIS in ``$BANET_HOME/pg``."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from banet_ops.db.engine import safe_url
from banet_ops.errors import ConfigError
from banet_ops.localstack.postgres import LocalPostgres
from banet_ops.settings import get_settings

EXIT_STOPPED = 3  # `stack status` when the cluster is not running (like `systemctl status`)


class StackArgs(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Literal["start", "stop", "status"]
    port: int | None = Field(None, ge=1024, le=65535)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``stack start|stop|status``."""
    parser = sub.add_parser("stack", help="start, stop or inspect the local PostGIS cluster ($BANET_HOME/pg)")
    actions = parser.add_subparsers(dest="stack_action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start the local cluster (idempotent) and print its URL")
    start.add_argument("--port", type=int, default=None, help="TCP port on 127.0.0.1 (default: a free one)")
    start.set_defaults(handler=handle)
    actions.add_parser("stop", help="stop the local cluster (a no-op when stopped)").set_defaults(handler=handle)
    actions.add_parser("status", help="print whether the local cluster runs; exit 3 when stopped").set_defaults(handler=handle)


def cluster() -> LocalPostgres:
    """The local cluster of the current settings."""
    return LocalPostgres(get_settings().home / "pg")


def handle(ns: argparse.Namespace) -> int:
    args = StackArgs(action=ns.stack_action, port=getattr(ns, "port", None))
    pg = cluster()
    if args.action == "start":
        try:
            url = pg.start(port=args.port)
        except subprocess.CalledProcessError as exc:
            detail = " ".join(str(exc.stderr or exc.stdout or "").split())[:400]
            raise ConfigError(f"expected the local cluster to start in {pg.folder}, found {Path(exc.cmd[0]).name} failing: {detail}") from None
        print(safe_url(url))  # the password stays in $BANET_HOME/pg/url and pg/password (mode 0600)
        return 0
    if args.action == "stop":
        was_running = pg.is_running()
        pg.stop()
        print(f"stopped {pg.folder}" if was_running else f"not running ({pg.folder})")
        return 0
    if pg.is_running():
        print(f"running {safe_url(pg.url())} (data: {pg.data_dir})")
        return 0
    print(f"stopped ({pg.folder})")
    return EXIT_STOPPED
