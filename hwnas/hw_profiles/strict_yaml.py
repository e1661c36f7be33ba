"""YAML read the strict way: `safe_load` (no Python objects), a mapping key given twice is an
error (PyYAML would keep the last value), and nesting deeper than `MAX_DEPTH` is refused."""

from __future__ import annotations

from typing import Any

import yaml

from hwnas.errors import InputError

MAX_DEPTH = 32
MAX_NODES = 100_000  # aliases can make a small file a huge tree ("billion laughs")


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                dup = key in seen
            except TypeError:  # an unhashable key (a list as a key): let PyYAML refuse it
                dup = False
            if dup:
                mark = key_node.start_mark
                raise InputError(f"{getattr(self, 'hwnas_source', 'YAML')}: key '{key}' appears "
                                 f"twice in one mapping (line {mark.line + 1}); keep one of them")
            try:
                seen.add(key)
            except TypeError:
                pass
        return super().construct_mapping(node, deep=deep)


def _depth(node: Any, limit: int) -> int:
    stack = [(node, 1)]
    deepest = visited = 0
    while stack:
        n, d = stack.pop()
        deepest, visited = max(deepest, d), visited + 1
        if deepest > limit or visited > MAX_NODES:
            return limit + 1
        if isinstance(n, yaml.SequenceNode):
            stack.extend((c, d + 1) for c in n.value)
        elif isinstance(n, yaml.MappingNode):
            stack.extend((v, d + 1) for _, v in n.value)
    return deepest


def load_strict(text: str, source: str) -> Any:
    loader = _StrictLoader(text)
    loader.hwnas_source = source  # type: ignore[attr-defined]
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _depth(node, MAX_DEPTH) > MAX_DEPTH:
            raise InputError(f"{source}: YAML nested more than {MAX_DEPTH} levels deep or "
                             f"more than {MAX_NODES} values (aliases); a profile is a small "
                             "mapping (see `hwnas hw show cpu-torch-fp32`)")
        return loader.construct_document(node)
    except RecursionError:
        raise InputError(f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()
