"""The error hierarchy: every error is a BanetError, retryable xor permanent, and a builtin."""

from __future__ import annotations

import inspect

import pytest

from banet_ops import errors as E

ALL = [c for _, c in inspect.getmembers(E, inspect.isclass) if issubclass(c, E.BanetError)]
BASES = {E.BanetError, E.RetryableError, E.PermanentError, E.SourceError, E.StorageError, E.DatabaseError}
LEAVES = [c for c in ALL if c not in BASES]


@pytest.mark.parametrize("cls", LEAVES, ids=lambda c: c.__name__)
def test_every_error_is_retryable_xor_permanent(cls: type[E.BanetError]) -> None:
    assert issubclass(cls, E.RetryableError) != issubclass(cls, E.PermanentError)
    exc = cls("boom")
    assert E.is_retryable(exc) is issubclass(cls, E.RetryableError)
    assert exc.retryable is E.is_retryable(exc)


@pytest.mark.parametrize(
    ("cls", "builtin", "retryable"),
    [
        (E.ConfigError, ValueError, False),
        (E.ValidationError, ValueError, False),
        (E.RegionError, ValueError, False),
        (E.SourceUnavailableError, ConnectionError, True),
        (E.RateLimitError, ConnectionError, True),
        (E.AuthenticationError, PermissionError, False),
        (E.NotFoundError, FileNotFoundError, False),
        (E.UnsafeNameError, ValueError, False),
        (E.IntegrityError, OSError, True),
        (E.DataFormatError, ValueError, False),
        (E.GeolocationMismatchError, ValueError, False),
        (E.CommitConflictError, OSError, True),
        (E.SnapshotNotFoundError, LookupError, False),
        (E.CubeNotFoundError, FileNotFoundError, False),
        (E.DatabaseUnavailableError, ConnectionError, True),
        (E.SchemaError, RuntimeError, False),
        (E.ModelError, RuntimeError, False),
        (E.InsufficientDataError, RuntimeError, False),
        (E.PromotionRefusedError, RuntimeError, False),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_builtin_inheritance(cls: type[E.BanetError], builtin: type[BaseException], retryable: bool) -> None:
    with pytest.raises(builtin):
        raise cls("expected x, found y")
    assert E.is_retryable(cls("m")) is retryable


def test_specific_parents() -> None:
    assert issubclass(E.RegionError, E.ValidationError)
    assert issubclass(E.RateLimitError, E.SourceUnavailableError)
    assert issubclass(E.GeolocationMismatchError, E.DataFormatError)
    for cls in (E.SourceUnavailableError, E.AuthenticationError, E.NotFoundError, E.UnsafeNameError, E.IntegrityError):
        assert issubclass(cls, E.SourceError)
    for cls in (E.CommitConflictError, E.SnapshotNotFoundError, E.CubeNotFoundError):
        assert issubclass(cls, E.StorageError)
    for cls in (E.DatabaseUnavailableError, E.SchemaError):
        assert issubclass(cls, E.DatabaseError)


def test_message_and_hint() -> None:
    exc = E.ConfigError("expected a bucket, found ''", hint="set BANET_CUBE_ROOT")
    assert exc.message == "expected a bucket, found ''"
    assert exc.hint == "set BANET_CUBE_ROOT"
    assert str(exc) == "expected a bucket, found '' (set BANET_CUBE_ROOT)"
    plain = E.ModelError("no weights")
    assert str(plain) == "no weights" and plain.hint is None


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError("t"), True),
        (ConnectionResetError("reset"), True),
        (ConnectionRefusedError("refused"), True),
        (ValueError("v"), False),
        (KeyError("k"), False),
        (OSError("disk"), False),
        (RuntimeError("r"), False),
    ],
    ids=lambda v: type(v).__name__,
)
def test_is_retryable_on_builtins(exc: BaseException, expected: bool) -> None:
    assert E.is_retryable(exc) is expected


def test_except_builtin_catches_banet_errors() -> None:
    try:
        raise E.RegionError("R_X.json: field 'bbox': bad")
    except ValueError as caught:
        assert isinstance(caught, E.BanetError)
