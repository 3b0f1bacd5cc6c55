"""Reading a YAML config safely: no duplicate keys, no alias bombs.

PyYAML's safe loader keeps the last of two equal keys without a word, and expands aliases by
reference, so nine levels of ten aliases ("billion laughs") load in microseconds and then hang
whatever walks the result (a deep copy, `Config.to_dict`). `load_yaml` refuses both, naming the
line: a config is a few hundred values, not a billion.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml

from plait.errors import ConfigError

MAX_VALUES = 100_000  # values (scalars, lists, mappings) a config may expand to, aliases included


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.name}: line {line}: key {key!r} is given twice in one mapping (first on line "
                    f"{seen[key]}); YAML would keep the last one silently — keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, name: str = "<config>") -> Any:
    """The document in `text`, refusing duplicate keys and documents that expand (through aliases)
    to more than MAX_VALUES values."""
    loader = _StrictLoader(text)
    loader.name = name
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    count = expanded_size(data, MAX_VALUES)
    if count > MAX_VALUES:
        raise ConfigError(
            f"{name}: expands to more than {MAX_VALUES:,} values (aliases repeat the same anchors over and "
            "over: an alias bomb, or a config far larger than any plait reads); write the values out"
        )
    return data


def expanded_size(data: Any, limit: int) -> int:
    """How many values `data` has with every alias expanded; stops counting past `limit`. Shared
    sub-trees are sized once (memoised by identity), so a bomb is measured without expanding it."""
    sizes: dict[int, int] = {}

    def size(value: Any) -> int:
        key = id(value)
        if key in sizes:
            return sizes[key]
        total = 1
        if isinstance(value, dict):
            for item in value.values():
                total += size(item)
                if total > limit:
                    break
        elif isinstance(value, list):
            for item in value:
                total += size(item)
                if total > limit:
                    break
        sizes[key] = total
        return total

    return size(data)
