"""``banet.granule``: one row per input file an ingestion used or rejected (the latest outcome wins)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_UPSERT = sa.text(
    """
    INSERT INTO banet.granule (file_name, product, day, size_bytes, checksum, source_url, status, message, updated_at)
    VALUES (:name, :product, :day, :size, :checksum, :url, :status, :message, now())
    ON CONFLICT (file_name) DO UPDATE SET product = EXCLUDED.product, day = EXCLUDED.day,
        size_bytes = COALESCE(EXCLUDED.size_bytes, banet.granule.size_bytes),
        checksum = COALESCE(EXCLUDED.checksum, banet.granule.checksum),
        source_url = EXCLUDED.source_url, status = EXCLUDED.status, message = EXCLUDED.message, updated_at = now()
    """
)


def upsert(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update granule rows (``name, product, day, size, checksum, url, status, message``) in the caller's transaction."""
    if rows:
        conn.execute(_UPSERT, list(rows))
