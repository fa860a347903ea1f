"""`banet-ops ingest --region R --date D [--end D2] [--dry-run]`: ingest region-days into the cube."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from banet_ops.errors import BanetError, ValidationError
from banet_ops.util import pydantic_problem

MAX_DAYS = 366


class IngestArgs(BaseModel):
    """Validated arguments of ``banet-ops ingest``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str = Field(pattern=r"^[A-Za-z0-9_]{1,32}$")
    date: dt.date
    end: dt.date | None = None
    dry_run: bool = False
    keep_going: bool = False
    force: bool = False

    @model_validator(mode="after")
    def _range_ok(self) -> IngestArgs:
        last = self.end or self.date
        if last < self.date:
            raise ValueError(f"--end {last} is before --date {self.date}")
        if (last - self.date).days + 1 > MAX_DAYS:
            raise ValueError(f"expected at most {MAX_DAYS} days per call, found {(last - self.date).days + 1}")
        today = dt.datetime.now(dt.UTC).date()
        if last > today:  # the same rule as require_published: nothing can be published for it yet
            raise ValueError(f"expected a day no later than today ({today} UTC), found {last}")
        return self

    @property
    def days(self) -> list[dt.date]:
        last = self.end or self.date
        return [self.date + dt.timedelta(days=i) for i in range((last - self.date).days + 1)]


def parse_args(ns: argparse.Namespace) -> IngestArgs:
    """Validate the parsed namespace; errors become a one-line ValidationError."""
    try:
        return IngestArgs(region=ns.region, date=ns.date, end=ns.end, dry_run=ns.dry_run, keep_going=ns.keep_going, force=ns.force)
    except PydanticValidationError as exc:
        raise ValidationError(pydantic_problem(exc, source="ingest", default_field="arguments", show_input=True)) from None


def handle(ns: argparse.Namespace) -> int:
    """Ingest each day of the range; prints one line per day and a summary."""
    from tqdm import tqdm

    from banet_ops.ingest.pipeline import IngestResult, ingest_day
    from banet_ops.regions import get_region
    from banet_ops.settings import get_settings

    args = parse_args(ns)
    settings = get_settings()
    region = get_region(args.region, settings.regions_dir)
    results: list[IngestResult] = []
    failures: list[tuple[dt.date, str]] = []
    for day in tqdm(args.days, desc=f"ingest {region.name}", unit="day", file=sys.stderr, disable=len(args.days) == 1):
        try:
            result = ingest_day(region, day, settings=settings, dry_run=args.dry_run, force=args.force)
        except BanetError as exc:
            if not args.keep_going:
                raise
            failures.append((day, " ".join(str(exc).split())))
            continue
        results.append(result)
        tqdm.write(result.summary(), file=sys.stdout)  # above the bar, on stdout
        for name, why in result.rejected[:10]:
            tqdm.write(f"  rejected {name}: {why}", file=sys.stdout)
    n_rejected = sum(len(r.rejected) for r in results)
    statuses = {s: sum(1 for r in results if r.status == s) for s in sorted({r.status for r in results})}
    print(
        f"ingest {region.name} {args.date}..{args.end or args.date}: {len(results)} days "
        f"({', '.join(f'{n} {s}' for s, n in statuses.items()) or 'none'}), {n_rejected} files rejected, "
        f"{sum(r.firms_rows_rejected for r in results)} bad FIRMS rows, "
        f"{sum(r.downloaded for r in results)} downloaded, {len(failures)} days failed" + (" [dry run: nothing written]" if args.dry_run else "")
    )
    for day, why in failures:
        print(f"  failed {day}: {why}", file=sys.stderr)
    return 1 if failures else 0


def _date(text: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, found {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, found {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this group's sub-commands to the top-level parser."""
    p = sub.add_parser("ingest", help="ingest VIIRS swaths and FIRMS fires of region-days into the cube")
    p.add_argument("--region", required=True, help="region name (R_{name}.json in BANET_REGIONS_DIR)")
    p.add_argument("--date", required=True, type=_date, help="first UTC day, YYYY-MM-DD")
    p.add_argument("--end", type=_date, default=None, help="last UTC day (inclusive); default: --date")
    p.add_argument("--dry-run", action="store_true", help="discover and report what would be fetched; write nothing")
    p.add_argument("--keep-going", action="store_true", help="go on with the next day when one fails (exit code 1 at the end)")
    p.add_argument("--force", action="store_true", help="replace a stored day even by a less complete version (more files rejected)")
    p.set_defaults(handler=handle)
