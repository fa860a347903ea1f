"""One error hierarchy for banet-ops.

Every error raised on purpose by the project derives from :class:`BanetError` and from the
builtin exception it refines (so ``except ValueError`` still works for callers that know nothing
about banet-ops).  Each error is either *retryable* (a transient condition: a 503, a timeout, a
rate limit, a commit conflict) or *permanent* (bad input, bad configuration, a missing file).
Airflow tasks use :func:`is_retryable` to decide between retrying with back-off and failing fast.

Messages follow one rule: say what was expected, what was found, and what to do.
"""

from __future__ import annotations


class BanetError(Exception):
    """Root of every banet-ops error."""

    retryable: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class RetryableError(BanetError):
    """A transient failure: the same call may succeed later."""

    retryable = True


class PermanentError(BanetError):
    """A failure that repeating the same call will not fix."""

    retryable = False


# --- configuration and validation -------------------------------------------------------------


class ConfigError(PermanentError, ValueError):
    """A setting is missing or invalid."""


class ValidationError(PermanentError, ValueError):
    """A value at a boundary (region file, DAG param, CLI argument) is invalid."""


class RegionError(ValidationError):
    """A region file is malformed or names an unknown region."""


# --- data sources ----------------------------------------------------------------------------


class SourceError(BanetError):
    """Base for errors talking to a data source (LAADS, CMR, FIRMS, a mirror)."""


class SourceUnavailableError(SourceError, RetryableError, ConnectionError):
    """The source answered 429/5xx, timed out or dropped the connection."""


class AuthenticationError(SourceError, PermanentError, PermissionError):
    """Credentials were refused (or an HTML login page came back instead of data)."""


class NotFoundError(SourceError, PermanentError, FileNotFoundError):
    """The requested item does not exist at the source."""


class RateLimitError(SourceUnavailableError):
    """The source's transaction limit was exceeded; retry after the window."""


class UnsafeNameError(SourceError, PermanentError, ValueError):
    """A listing entry carries a path (``/``, ``\\`` or ``..``) instead of a plain file name."""


class IntegrityError(SourceError, RetryableError, IOError):
    """A download is truncated or fails its checksum; downloading again may fix it."""


# --- file formats ----------------------------------------------------------------------------


class DataFormatError(PermanentError, ValueError):
    """A file is corrupt, truncated or not in the expected format."""


class GeolocationMismatchError(DataFormatError):
    """An L1B granule and its geolocation file do not belong together."""


# --- storage ---------------------------------------------------------------------------------


class StorageError(BanetError, OSError):
    """Base for cube and product storage errors."""


class CommitConflictError(StorageError, RetryableError):
    """A concurrent writer committed first and the conflict could not be rebased."""


class SnapshotNotFoundError(StorageError, PermanentError, LookupError):
    """A requested cube snapshot does not exist (expired or never written)."""


class CubeNotFoundError(StorageError, PermanentError, FileNotFoundError):
    """The region has no cube yet."""


class StorageUnavailableError(StorageError, RetryableError):
    """The cube or product storage did not answer in time, or failed transiently (timeout, 5xx, dropped connection)."""


class LessCompleteError(PermanentError, ValueError):
    """A day would be replaced by a less complete version (more files rejected, fewer cells observed)."""


# --- database --------------------------------------------------------------------------------


class DatabaseError(BanetError):
    """Base for PostGIS errors."""


class DatabaseUnavailableError(DatabaseError, RetryableError, ConnectionError):
    """The database cannot be reached right now."""


class SchemaError(DatabaseError, PermanentError, RuntimeError):
    """The database schema is missing or older than the code expects."""


# --- models ----------------------------------------------------------------------------------


class ModelError(PermanentError, RuntimeError):
    """Model weights are missing, of the wrong architecture, or fail to load."""


class InsufficientDataError(PermanentError, RuntimeError):
    """There is not enough data (days, samples, labels) to do what was asked."""


class PromotionRefusedError(PermanentError, RuntimeError):
    """A candidate model did not beat production by the configured margin."""


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` is a transient failure worth retrying."""
    if isinstance(exc, BanetError):
        return exc.retryable
    return isinstance(exc, (TimeoutError, ConnectionError))
