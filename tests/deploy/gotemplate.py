"""A strict renderer for the subset of Helm templates that the chart's pod templates use.

There is no helm binary here. This renders a chart template with real values so that a test can
hand the result to ``KubernetesPodOperator``: actions with whitespace trimming, comments,
``define``/``include``, ``if``/``else if``/``else``, ``with``, ``range`` over lists and maps,
pipelines and the Sprig/Helm functions listed in ``FUNCTIONS``.  Anything else (variables,
unknown functions, a field of nothing) raises :class:`TemplateError`, so a template that moves
beyond the subset fails its test instead of rendering wrongly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.DOTALL)
_ARG = re.compile(r'"(?:[^"\\]|\\.)*"|\(|\)|\||[^\s()|]+')
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_KEYWORDS = ("if", "else", "end", "range", "with", "define")


class TemplateError(Exception):
    """A template outside the supported subset, or one that fails to render."""


@dataclass
class Node:
    kind: str  # text | action | if | range | with | define
    arg: str = ""
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


def _tokens(text: str) -> list[tuple[str, str]]:
    """(``text``, s) and (``action``, source) pairs, whitespace trimmed as ``{{-`` and ``-}}`` say."""
    out: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(text):
        chunk = text[pos : m.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if m.group(1):
            chunk = chunk.rstrip()
        out.append(("text", chunk))
        source = m.group(2).strip()
        if not (source.startswith("/*") and source.endswith("*/")):
            out.append(("action", source))
        pos, trim_next = m.end(), bool(m.group(3))
    tail = text[pos:]
    out.append(("text", tail.lstrip() if trim_next else tail))
    return out


class _Parser:
    """Builds the node tree from the token list (one pass, recursive over blocks)."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.defines: dict[str, list[Node]] = {}

    def block(self) -> tuple[list[Node], str]:
        """Nodes up to the closing ``end``/``else`` action, and that action's source ("" at the end of the text)."""
        nodes: list[Node] = []
        while self.pos < len(self.tokens):
            kind, source = self.tokens[self.pos]
            self.pos += 1
            word, _, rest = source.partition(" ")
            if kind == "text":
                nodes += [Node("text", source)] if source else []
            elif word in ("end", "else"):
                return nodes, source
            elif word in ("if", "range", "with"):
                nodes.append(self.branch(word, rest.strip()))
            elif word == "define":
                self.defines[json.loads(rest.strip())] = self.block()[0]
            else:
                nodes.append(Node("action", source))
        return nodes, ""

    def branch(self, word: str, arg: str) -> Node:
        if ":=" in arg:
            raise TemplateError(f"variables are not supported: {word} {arg}")
        node = Node(word, arg)
        node.body, closing = self.block()
        if closing.startswith("else if "):
            node.orelse = [self.branch("if", closing[len("else if ") :].strip())]
        elif closing == "else":
            node.orelse, closing = self.block()
        if closing and closing != "end" and not closing.startswith("else if "):
            raise TemplateError(f"unexpected {{{{ {closing} }}}}")
        return node


def parse(text: str) -> tuple[list[Node], dict[str, list[Node]]]:
    """The node tree of ``text`` and the templates it defines."""
    parser = _Parser(text)
    nodes, closing = parser.block()
    if closing:
        raise TemplateError(f"unexpected {{{{ {closing} }}}} at the top level")
    return nodes, parser.defines


def truthy(value: Any) -> bool:
    """Go templates' truth: false, 0, nil and empty strings, lists and maps are false."""
    return value not in (None, False, 0, "") and not (isinstance(value, (list, dict, tuple)) and not value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TemplateError(f"cannot print {type(value).__name__} {value!r} (use toYaml or toJson)")


def _indent(n: int, text: str) -> str:
    return "\n".join(" " * n + line for line in str(text).split("\n"))


def _printf(fmt: str, *args: Any) -> str:
    return re.sub(r"%[vsd]", "%s", fmt) % tuple(_text(a) for a in args)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "dict": lambda *kv: {kv[i]: kv[i + 1] for i in range(0, len(kv), 2)},
    "list": lambda *items: list(items),
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "not": lambda a: not truthy(a),
    "and": lambda *a: all(truthy(x) for x in a),
    "or": lambda *a: any(truthy(x) for x in a),
    "default": lambda d, v=None: v if truthy(v) else d,
    "quote": lambda v: json.dumps(_text(v)),
    "squote": lambda v: f"'{_text(v)}'",
    "toYaml": lambda v: yaml.safe_dump(v, default_flow_style=False, sort_keys=True).rstrip("\n"),
    "toJson": lambda v: json.dumps(v, separators=(",", ":"), sort_keys=True),
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "indent": _indent,
    "join": lambda sep, items: sep.join(_text(i) for i in items or []),
    "replace": lambda old, new, s: str(s).replace(old, new),
    "printf": _printf,
}


class Renderer:
    """Renders templates of one chart with the defines of its ``_helpers.tpl``."""

    def __init__(self, chart: Path) -> None:
        self.chart = chart
        self.defines: dict[str, list[Node]] = {}
        for helper in sorted((chart / "templates").glob("_*.tpl")):
            self.defines.update(parse(helper.read_text())[1])

    def render_file(self, name: str, context: Mapping[str, Any]) -> str:
        nodes, defines = parse((self.chart / "templates" / name).read_text())
        self.defines.update(defines)
        return self.render(nodes, context, context)

    def render(self, nodes: list[Node], dot: Any, root: Any) -> str:
        out: list[str] = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.arg)
            elif node.kind == "action":
                out.append(_text(self.pipeline(node.arg, dot, root)))
            elif node.kind == "if":
                out.append(self.render(node.body if truthy(self.pipeline(node.arg, dot, root)) else node.orelse, dot, root))
            elif node.kind == "with":
                value = self.pipeline(node.arg, dot, root)
                out.append(self.render(node.body, value, root) if truthy(value) else self.render(node.orelse, dot, root))
            elif node.kind == "range":
                value = self.pipeline(node.arg, dot, root)
                items = [value[k] for k in sorted(value)] if isinstance(value, dict) else list(value or [])
                out.append("".join(self.render(node.body, item, root) for item in items) if items else self.render(node.orelse, dot, root))
        return "".join(out)

    def include(self, name: str, dot: Any) -> str:
        if name not in self.defines:
            raise TemplateError(f"include of undefined template {name!r}")
        return self.render(self.defines[name], dot, dot)

    # expressions ---------------------------------------------------------------------------------
    def pipeline(self, source: str, dot: Any, root: Any) -> Any:
        return self._pipeline(_ARG.findall(source), dot, root)

    def _pipeline(self, args: list[str], dot: Any, root: Any) -> Any:
        commands: list[list[str]] = [[]]
        depth = 0
        for arg in args:
            depth += (arg == "(") - (arg == ")")
            if arg == "|" and depth == 0:
                commands.append([])
            else:
                commands[-1].append(arg)
        value: Any = _NOTHING
        for command in commands:
            value = self._command(command, dot, root, value)
        return value

    def _command(self, args: list[str], dot: Any, root: Any, piped: Any) -> Any:
        if not args:
            raise TemplateError("empty command in a pipeline")
        operands: list[Any] = []
        rest = args[1:] if args[0] in FUNCTIONS or args[0] == "include" else args
        pos = 0
        while pos < len(rest):
            if rest[pos] == "(":
                depth, end = 0, pos
                for end in range(pos, len(rest)):
                    depth += (rest[end] == "(") - (rest[end] == ")")
                    if depth == 0:
                        break
                operands.append(self._pipeline(rest[pos + 1 : end], dot, root))
                pos = end + 1
            else:
                operands.append(self._operand(rest[pos], dot, root))
                pos += 1
        if piped is not _NOTHING:
            operands.append(piped)
        if args[0] == "include":
            return self.include(*operands)
        if args[0] in FUNCTIONS:
            return FUNCTIONS[args[0]](*operands)
        if len(operands) != 1:
            raise TemplateError(f"unknown function {args[0]!r}")
        return operands[0]

    def _operand(self, token: str, dot: Any, root: Any) -> Any:
        if token.startswith('"'):
            return json.loads(token)
        if _NUMBER.fullmatch(token):
            return float(token) if "." in token else int(token)
        if token in ("true", "false", "nil"):
            return {"true": True, "false": False, "nil": None}[token]
        if token == ".":
            return dot
        if token.startswith("."):
            return _field(dot, token[1:].split("."), token)
        if token == "$":
            return root
        if token.startswith("$."):
            return _field(root, token[2:].split("."), token)
        if token in _KEYWORDS:
            raise TemplateError(f"misplaced keyword {token!r}")
        raise TemplateError(f"unsupported token {token!r} (variables and unknown functions are outside the subset)")


_NOTHING = object()


def _field(value: Any, path: list[str], token: str) -> Any:
    for i, name in enumerate(path):
        if not isinstance(value, Mapping):
            raise TemplateError(f"{token}: nil pointer evaluating {'.'.join(path[:i]) or '.'}.{name}")
        value = value.get(name)
    return value


def render_chart_file(chart: Path, name: str, values: Mapping[str, Any], namespace: str = "airflow") -> list[dict[str, Any]]:
    """The YAML documents of ``templates/<name>`` rendered with ``values`` (release ``banet``)."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    context = {
        "Values": values,
        "Release": {"Name": "banet", "Namespace": namespace, "Service": "Helm"},
        "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta.get("appVersion", "")},
    }
    text = Renderer(chart).render_file(name, context)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def write_pod_templates(chart: Path, values: Mapping[str, Any], folder: Path) -> Path:
    """The chart's pod-templates ConfigMap rendered with ``values``, its files written to ``folder`` (as mounted)."""
    (configmap,) = render_chart_file(chart, "configmap-pod-templates.yaml", values)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in configmap["data"].items():
        (folder / name).write_text(text)
    return folder
