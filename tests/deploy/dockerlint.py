"""A small parser-based Dockerfile linter for the rules banet-ops cares about (hadolint is not available).

Usage: ``python tests/deploy/dockerlint.py docker/*.Dockerfile`` (exit 1 on findings).

Rules (ids in brackets):
* [pinned-base] every ``FROM`` names a tag or digest, never ``latest`` (earlier stages and
  ``scratch`` excepted; ``$ARG`` references are resolved from ARG defaults).
* [non-root] the final stage sets ``USER`` and its last ``USER`` is not root / uid 0.
* [no-secrets] no ``ENV``/``ARG`` whose name looks like a credential (TOKEN, KEY, PASSWORD,
  SECRET) carries a value.
* [multi-stage] (when required) at least two stages, and the final stage installs no compiler
  or ``-dev`` package.
* [lock] ``requirements.lock`` is copied and a ``pip install`` uses it (``-c``/``-r``).
* [pip-pinned] every ``pip install`` is constrained by the lock or pins each package with ``==``.
* [apt] ``apt-get install`` uses ``-y --no-install-recommends`` and the same RUN removes
  ``/var/lib/apt/lists``.
* [no-remote] no ``ADD http(s)://`` and no ``curl|wget ... | sh``.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

CREDENTIAL = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|(^|_)KEY($|_)|MAP_KEY|ACCESS_KEY", re.IGNORECASE)
BUILD_PACKAGES = re.compile(r"^(build-essential|gcc(-[0-9.]+)?|g\+\+(-[0-9.]+)?|clang(-[0-9.]+)?|make|cmake|gfortran|cargo|rustc|.*-dev)$")
ROOT_USERS = {"root", "0", "root:root", "0:0", "root:0", "0:root"}


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str


@dataclass
class Stage:
    image: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Finding:
    rule: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.line}: [{self.rule}] {self.message}"


def parse(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored by Docker too
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        joined = " ".join(part for part in buffer if part)
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
        buffer = []
    if buffer:
        joined = " ".join(buffer)
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
    return instructions


def stages(instructions: list[Instruction]) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            image = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(image=image, name=name, line=ins.line))
        elif not result:
            if ins.keyword == "ARG":
                key, _, value = ins.args.partition("=")
                global_args[key.strip()] = value.strip().strip('"')
        else:
            result[-1].instructions.append(ins)
    return global_args, result


def _resolve(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), m.group(0)), image)


def _env_pairs(ins: Instruction) -> list[tuple[str, str]]:
    """(name, value) pairs of an ENV or ARG instruction; value '' when none is given."""
    try:
        words = shlex.split(ins.args)
    except ValueError:
        words = ins.args.split()
    if ins.keyword == "ENV" and words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]  # legacy `ENV NAME value`
    pairs = []
    for word in words:
        name, sep, value = word.partition("=")
        pairs.append((name, value if sep else ""))
    return pairs


def _shell_commands(run: str) -> list[str]:
    return [c.strip() for c in re.split(r"&&|\|\||;", run) if c.strip()]


def _pip_args(rest: list[str], lock_paths: set[str]) -> tuple[bool, bool, list[str]]:
    """(constrained, reads the lock, packages) of the words after one ``pip install``."""
    constrained = uses_lock = skip_next = False
    packages: list[str] = []
    for i, word in enumerate(rest):
        if skip_next:
            skip_next = False
        elif word in ("-c", "--constraint", "-r", "--requirement"):
            constrained = skip_next = True
            uses_lock = uses_lock or (i + 1 < len(rest) and rest[i + 1] in lock_paths)
        elif word.startswith(("--constraint=", "--requirement=")):
            constrained = True
            uses_lock = uses_lock or word.partition("=")[2] in lock_paths
        elif word in ("--index-url", "-i", "--extra-index-url", "-f", "--find-links", "--target", "-t", "--prefix", "--root"):
            skip_next = True
        elif not word.startswith("-"):
            packages.append(word)
    return constrained, uses_lock, packages


def _check_pip(ins: Instruction, findings: list[Finding], lock_paths: set[str]) -> bool:
    """Check every `pip install` of one RUN; True when one of them reads requirements.lock."""
    uses_lock = False
    for command in _shell_commands(ins.args):
        words = shlex.split(command) if command.count('"') % 2 == 0 else command.split()
        if "pip" not in [Path(w).name for w in words[:3]] and not (len(words) > 2 and words[1:3] == ["-m", "pip"]):
            continue
        if "install" not in words:
            continue
        constrained, reads_lock, packages = _pip_args(words[words.index("install") + 1 :], lock_paths)
        uses_lock = uses_lock or reads_lock
        unpinned = [p for p in packages if "==" not in p]
        if not constrained and unpinned:
            message = f"pip install of {', '.join(unpinned)} is neither pinned (==) nor constrained by requirements.lock"
            findings.append(Finding("pip-pinned", ins.line, message))
    return uses_lock


def _check_base(stage: Stage, global_args: dict[str, str], names: set[str], findings: list[Finding]) -> None:
    """The stage's base image is pinned (a tag other than latest, or a digest), or an earlier stage."""
    image = _resolve(stage.image, global_args)
    if "$" in image:
        findings.append(Finding("pinned-base", stage.line, f"FROM {stage.image}: the ARG has no default, so the base image is not pinned"))
    elif image not in names and image != "scratch":
        ref = image.split("@", 1)
        last = ref[0].rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        if len(ref) == 1 and not tag:
            findings.append(Finding("pinned-base", stage.line, f"FROM {image}: no tag; pin a version tag or digest"))
        elif tag == "latest" and len(ref) == 1:
            findings.append(Finding("pinned-base", stage.line, f"FROM {image}: 'latest' moves; pin a version tag or digest"))


@dataclass
class _LockUse:
    """Where requirements.lock lands in the image, and whether a pip install reads it."""

    copied: bool = False
    used: bool = False
    paths: set[str] = field(default_factory=set)


def _check_copy(ins: Instruction, findings: list[Finding], lock: _LockUse) -> None:
    words = [w for w in ins.args.split() if not w.startswith("--")]
    sources, dest = words[:-1], words[-1] if words else ""
    if any(Path(s).name == "requirements.lock" for s in sources):
        lock.copied = True
        lock.paths.add(f"{dest}requirements.lock" if dest.endswith("/") else dest)
    if ins.keyword == "ADD" and any(s.startswith(("http://", "https://")) for s in sources):
        findings.append(Finding("no-remote", ins.line, "ADD of a URL: download in a RUN with a checksum, or COPY"))


def _check_run(ins: Instruction, findings: list[Finding], lock: _LockUse) -> None:
    lock.used = _check_pip(ins, findings, lock.paths) or lock.used
    if re.search(r"(curl|wget)[^|]*\|\s*(ba|z)?sh\b", ins.args):
        findings.append(Finding("no-remote", ins.line, "piping a download into a shell"))
    for command in _shell_commands(ins.args):
        if re.match(r"^(apt-get|apt)\s+(-\S+\s+)*install\b", command):
            if "--no-install-recommends" not in command or not re.search(r"(^|\s)-y\b|--yes", command):
                findings.append(Finding("apt", ins.line, "apt-get install needs -y --no-install-recommends"))
            if "/var/lib/apt/lists" not in ins.args:
                findings.append(Finding("apt", ins.line, "apt-get install without removing /var/lib/apt/lists in the same RUN"))


def _check_instruction(ins: Instruction, findings: list[Finding], lock: _LockUse) -> None:
    if ins.keyword in ("ENV", "ARG"):
        for name, value in _env_pairs(ins):
            if CREDENTIAL.search(name) and value:
                message = f"{ins.keyword} {name} carries a value: pass secrets at run time (Secret, --mount=type=secret)"
                findings.append(Finding("no-secrets", ins.line, message))
    elif ins.keyword in ("COPY", "ADD"):
        _check_copy(ins, findings, lock)
    elif ins.keyword == "RUN":
        _check_run(ins, findings, lock)


def _check_final_stage(final: Stage, findings: list[Finding], require_multistage: bool, n_stages: int) -> None:
    """The final stage runs as non-root and (for multi-stage images) installs no build packages."""
    users = [ins for ins in final.instructions if ins.keyword == "USER"]
    if not users:
        findings.append(Finding("non-root", final.line, "the final stage sets no USER: it would run as the base image's user (often root)"))
    elif users[-1].args.split()[0] in ROOT_USERS:
        findings.append(Finding("non-root", users[-1].line, f"the final USER is {users[-1].args}: run as a non-root user"))
    if not require_multistage:
        return
    if n_stages < 2:
        findings.append(Finding("multi-stage", final.line, "expected a builder stage and a final stage, found a single stage"))
    for ins in final.instructions:
        if ins.keyword != "RUN":
            continue
        for command in _shell_commands(ins.args):
            match = re.match(r"^(apt-get|apt|apk|yum|dnf|microdnf)\s+.*?\b(install|add)\b(.*)$", command)
            for word in match.group(3).split() if match else []:
                if not word.startswith("-") and BUILD_PACKAGES.match(word):
                    findings.append(Finding("multi-stage", ins.line, f"the final stage installs the build package {word}: compile in the builder stage"))


def lint(text: str, *, require_multistage: bool = False) -> list[Finding]:
    """All findings for one Dockerfile's text."""
    findings: list[Finding] = []
    global_args, all_stages = stages(parse(text))
    if not all_stages:
        return [Finding("pinned-base", 1, "no FROM instruction")]
    names: set[str] = set()
    lock = _LockUse()
    for stage in all_stages:
        _check_base(stage, global_args, names, findings)
        if stage.name:
            names.add(stage.name)
        for ins in stage.instructions:
            _check_instruction(ins, findings, lock)
    final = all_stages[-1]
    _check_final_stage(final, findings, require_multistage, len(all_stages))
    if not lock.copied:
        findings.append(Finding("lock", final.line, "requirements.lock is never copied into the image"))
    elif not lock.used:
        findings.append(Finding("lock", final.line, "no pip install reads requirements.lock (-c/--constraint or -r)"))
    return findings


def copy_sources(text: str) -> list[str]:
    """Build-context paths that COPY/ADD instructions read (``--from`` copies excluded)."""
    sources: list[str] = []
    for ins in parse(text):
        if ins.keyword not in ("COPY", "ADD") or "--from=" in ins.args:
            continue
        words = [w for w in ins.args.split() if not w.startswith("--")]
        sources += words[:-1]
    return sources


def main(argv: list[str]) -> int:
    status = 0
    for name in argv:
        text = Path(name).read_text()
        for finding in lint(text, require_multistage="inference" in Path(name).name):
            print(f"{name}:{finding}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
