"""`banet-ops db upgrade|status|rebuild-events`: schema migrations of the PostGIS database, fire events."""

from __future__ import annotations

import argparse
import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict

from banet_ops.db import migrate
from banet_ops.db.engine import safe_url
from banet_ops.settings import get_settings


class DbArgs(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Literal["upgrade", "status", "rebuild-events"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``db upgrade`` and ``db status``."""
    parser = sub.add_parser("db", help="PostGIS schema migrations (BANET_DATABASE_URL or the local stack)")
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    actions.add_parser("upgrade", help="apply pending migrations (idempotent)").set_defaults(handler=handle)
    actions.add_parser("status", help="print the schema version and pending migrations; exit 1 when any is pending").set_defaults(handler=handle)
    actions.add_parser("rebuild-events", help="recompute the fire events of every region and product from their cells (after migration 0009)").set_defaults(
        handler=handle
    )


def handle(ns: argparse.Namespace) -> int:
    args = DbArgs(action=ns.db_action)
    if not getattr(ns, "verbose", False):
        logging.getLogger("yoyo").setLevel(logging.WARNING)  # one line per migration is printed below
    url = get_settings().resolved_database_url()
    if args.action == "rebuild-events":
        from banet_ops.publish.event_db import rebuild_events

        for region, product, n in rebuild_events(url, get_settings().event_max_gap_days):
            print(f"{region} {product}: {n} fire events")
        return 0
    if args.action == "upgrade":
        applied = migrate.upgrade(url)
        if applied:
            for migration_id in applied:
                print(f"applied {migration_id}")
            print(f"{safe_url(url)}: schema at {applied[-1]}")
        else:
            print(f"{safe_url(url)}: up to date ({migrate.current_version(url)})")
        return 0
    version = migrate.current_version(url)
    pending = migrate.pending_ids(url)
    print(f"{safe_url(url)}: schema at {version or 'nothing (never migrated)'}")
    for migration_id in pending:
        print(f"pending {migration_id}")
    return 1 if pending else 0
