"""YAML text → plain Python data plus the line/column of every key and value.

PyYAML's ``safe_load`` forgets where things were, and a person fixing a rule file needs
``file:line:column``. So we ``compose`` (SafeLoader) to get nodes with marks and build the data
ourselves, recording positions by path (``("rule_sets", "advice", "stages", "asked", "after")``).
Duplicate keys, which ``safe_load`` silently collapses, are reported here, and unquoted times
such as ``8:00`` stay text instead of becoming YAML 1.1 base-60 numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from mailmentor.errors import RuleProblem, RulesError

#: A place in the data: mapping keys and list indexes from the document root.
DataPath = tuple[Any, ...]
#: 1-based (line, column).
Position = tuple[int, int]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_SEXAGESIMAL_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
#: Rule files are small; these bounds keep hostile files (alias bombs, deep nesting) cheap.
MAX_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_DEPTH = 64


@dataclass
class Located:
    """Data built from one YAML document, with where each value and each key starts."""

    data: Any
    values: dict[DataPath, Position] = field(default_factory=dict)
    keys: dict[DataPath, Position] = field(default_factory=dict)
    #: Problems found while building (duplicate keys, odd keys); the data is still usable.
    problems: list[RuleProblem] = field(default_factory=list)
    #: Values already reported as unreadable; checks on them would only repeat the problem.
    unreadable: set[DataPath] = field(default_factory=set)

    def position(self, path: DataPath, *, key: bool = False) -> Position:
        """Where ``path`` is, or its nearest ancestor that has a position (never fails)."""
        table = self.keys if key else self.values
        if path in table:
            return table[path]
        for cut in range(len(path) - 1, -1, -1):
            if path[:cut] in self.values:
                return self.values[path[:cut]]
        return (1, 1)


def _pos(mark: yaml.Mark | None) -> Position:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def syntax_problem(source: str, error: yaml.YAMLError) -> RuleProblem:
    """One problem for a YAML syntax error, at the place PyYAML blames."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        parts = [p for p in (error.context, error.problem) if p]
        line, column = _pos(mark)
        text = ", ".join(parts) or "invalid YAML"
        return RuleProblem(source, line, column, "", f"YAML syntax error: {text}")
    return RuleProblem(source, 1, 1, "", f"YAML syntax error: {error}")


def show(value: Any, limit: int = 40) -> str:
    """A short, quoted rendering of a user's value for an error message."""
    if isinstance(value, str):
        text = value if len(value) <= limit else value[:limit] + "…"
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped) + '"'
    if isinstance(value, bool):
        return "true" if value else "false"  # as the person wrote it, not Python's True
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "nothing"
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


class _Builder:
    """Walks composed nodes into dicts/lists/scalars, recording marks along the way."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.located = Located(data=None)
        self.constructor = yaml.SafeLoader("")
        self.count = 0

    def problem(self, path: DataPath, position: Position, message: str) -> None:
        line, column = position
        self.located.problems.append(RuleProblem(self.source, line, column, dotted(path), message))

    def build(self, node: yaml.Node, path: DataPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(f"more than {MAX_NODES} values (aliases expanding too far?)", node)
        if depth > MAX_DEPTH:
            raise _TooBig(f"nested more than {MAX_DEPTH} levels deep", node)
        self.located.values.setdefault(path, _pos(node.start_mark))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            return self.unreadable(path, node, f"unsupported tag {node.tag!r}")
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if node.tag in _SEXAGESIMAL_TAGS and ":" in str(node.value):
            # YAML 1.1 reads an unquoted ``8:00`` as the base-60 number 480; in a rule file
            # it is always a time of day, so keep the text as written.
            return str(node.value)
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            reason = exc.problem or "unreadable value"
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            reason = str(exc)
        return self.unreadable(path, node, reason)

    def unreadable(self, path: DataPath, node: yaml.Node, reason: str) -> None:
        """Report a value we refuse to build (unknown tag...); checks on it are skipped."""
        self.located.unreadable.add(path)
        self.problem(path, _pos(node.start_mark), f"cannot read this value: {reason}")

    def mapping(self, node: yaml.MappingNode, path: DataPath, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self.merge_sources(value_node, path))
                continue
            self.entry(result, key_node, value_node, path, depth, explicit=True)
        for key_node, value_node in merged:  # "<<: *anchor": explicit keys win
            self.entry(result, key_node, value_node, path, depth, explicit=False)
        return result

    def merge_sources(
        self, value_node: yaml.Node, path: DataPath
    ) -> list[tuple[yaml.Node, yaml.Node]]:
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for source in sources:
            if isinstance(source, yaml.MappingNode):
                pairs.extend(source.value)
            else:
                self.problem(path, _pos(source.start_mark), "'<<' must merge a mapping")
        return pairs

    def entry(
        self,
        result: dict[Any, Any],
        key_node: yaml.Node,
        value_node: yaml.Node,
        path: DataPath,
        depth: int,
        *,
        explicit: bool,
    ) -> None:
        key_pos = _pos(key_node.start_mark)
        if not isinstance(key_node, yaml.ScalarNode):
            self.problem(path, key_pos, "keys must be plain names, not lists or mappings")
            return
        # Keys stay text: every key in a rule file is a name, and YAML 1.1 would turn
        # ``no:``/``on:`` into booleans and ``1:`` into a number.
        key = str(key_node.value)
        if key in result:
            if explicit:
                first = self.located.keys.get((*path, key), (0, 0))[0]
                self.problem(
                    (*path, key), key_pos, f"duplicate key {show(key)} (first at line {first})"
                )
            return
        self.located.keys[(*path, key)] = key_pos
        result[key] = self.build(value_node, (*path, key), depth + 1)


class _TooBig(Exception):
    def __init__(self, message: str, node: yaml.Node) -> None:
        super().__init__(message)
        self.node = node


def dotted(path: DataPath) -> str:
    """``("rule_sets", "advice", "match", "kinds", 0)`` → ``rule_sets.advice.match.kinds[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = str(part)
            if not text or any(c in text for c in '. "[]'):
                text = show(text)
            out += ("." if out else "") + text
    return out


def load_located(text: str, source: str) -> Located:
    """Build data and positions from YAML text; raise RulesError for unusable input.

    ``source`` names the file in problems. An empty document gives ``data=None``.
    """
    if len(text) > MAX_BYTES:
        raise RulesError([RuleProblem(source, 1, 1, "", f"file is larger than {MAX_BYTES} bytes")])
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise RulesError([syntax_problem(source, exc)]) from exc
    except RecursionError as exc:
        problem = RuleProblem(source, 1, 1, "", "YAML syntax error: nested too deeply")
        raise RulesError([problem]) from exc
    builder = _Builder(source)
    if root is None:
        return builder.located
    try:
        builder.located.data = builder.build(root, (), 0)
    except _TooBig as exc:
        line, column = _pos(exc.node.start_mark)
        raise RulesError([RuleProblem(source, line, column, "", str(exc))]) from exc
    return builder.located
