"""The chart's values.schema.json: the defaults pass, every bad values file fails with its message."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "banet-ops"
BAD = Path(__file__).resolve().parent / "bad_values"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())


def helm_merge(base: Any, override: Any) -> Any:
    """Values the way helm coalesces ``-f`` files: maps merge, lists replace, null deletes a key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def errors_of(values: dict[str, Any]) -> list[tuple[str, str]]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    out = []
    for error in validator.iter_errors(values):
        path = ".".join(str(p) for p in error.absolute_path) or "<root>"
        out.append((path, error.message))
    return out


def test_schema_is_valid_draft7_with_go_compatible_regexes() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    # helm evaluates patterns with Go's RE2: no look-around, no back-references.
    patterns = re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', json.dumps(SCHEMA))
    assert patterns
    for pattern in patterns:
        assert not re.search(r"\(\?[=!<]|\\[1-9]", pattern), pattern


def test_default_values_validate() -> None:
    assert errors_of(DEFAULTS) == []


def test_example_site_values_validate() -> None:
    site = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())
    assert errors_of(helm_merge(DEFAULTS, site)) == []


def test_s3_reference_may_be_dropped_for_workload_identity() -> None:
    assert errors_of(helm_merge(DEFAULTS, {"secrets": {"s3": None}})) == []


BAD_FILES = sorted(BAD.glob("*.yaml"))


def test_there_are_many_bad_values_examples() -> None:
    assert len(BAD_FILES) >= 20


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_values_are_rejected_with_the_expected_message(path: Path) -> None:
    header = path.read_text().splitlines()[0]
    match = re.fullmatch(r"# expect: (\S+) :: (.+)", header)
    assert match, f"{path.name}: first line must be '# expect: PATH :: MESSAGE'"
    where, message = match.groups()
    found = errors_of(helm_merge(DEFAULTS, yaml.safe_load(path.read_text())))
    assert found, f"{path.name} was accepted"
    assert any(p == where and message in m for p, m in found), f"{path.name}: expected {where}: {message!r}, got {found}"


def test_no_secret_value_in_default_values() -> None:
    """Only names and keys: no value under secrets.*, and nothing credential-like anywhere."""
    text = (CHART / "values.yaml").read_text()
    for key in ("password", "pass:", "token:", "fernetKey:", "jwtSecret:", "apiSecretKey:"):
        assert not re.search(rf"^\s*{re.escape(key)}", text, re.IGNORECASE | re.MULTILINE), key
    for ref in DEFAULTS["secrets"].values():
        assert set(ref) <= {"secretName", "key", "accessKeyIdKey", "secretAccessKeyKey"}
