"""The per-region data cube: an Icechunk (transactional Zarr) repository per region.

``write_day``/``commit_day`` commit one region-day (the day's status, unchanged check and commit), ``read_window`` reads a block at a pinned snapshot,
``latest_snapshot`` gives the id to pin.  See ``docs/cube.md`` for the layout and its reasons.
"""

from banet_ops.cube.db import record_cube_day, sync_cube_days
from banet_ops.cube.housekeeping import GcResult, gc_cube
from banet_ops.cube.info import CubeInfo, DayRecord, cube_info, day_records, render_calendar
from banet_ops.cube.layout import COMPLETE_FRACTION, TIME_ORIGIN, day_status
from banet_ops.cube.legacy import LegacyImportResult, import_legacy, read_legacy_file
from banet_ops.cube.reader import CubeWindow, latest_snapshot, open_dataset, read_window
from banet_ops.cube.storage import cube_location
from banet_ops.cube.writer import DayCommit, commit_day, valid_fraction, write_day

__all__ = [
    "COMPLETE_FRACTION",
    "TIME_ORIGIN",
    "CubeInfo",
    "CubeWindow",
    "DayCommit",
    "DayRecord",
    "GcResult",
    "LegacyImportResult",
    "commit_day",
    "cube_info",
    "cube_location",
    "day_records",
    "day_status",
    "gc_cube",
    "import_legacy",
    "latest_snapshot",
    "open_dataset",
    "read_legacy_file",
    "read_window",
    "record_cube_day",
    "render_calendar",
    "sync_cube_days",
    "valid_fraction",
    "write_day",
]
