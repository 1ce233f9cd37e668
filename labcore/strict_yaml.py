"""YAML that reads what the user typed, or says why it cannot.

PyYAML follows YAML 1.1, which silently turns some plain words into other
types: ``0123`` becomes the octal number 83, ``off``/``no``/``yes``/``on``
become booleans, and a key given twice keeps the second value. This loader
keeps those cases visible to the validator:

* a key given twice raises :class:`DuplicateKey` with both line numbers;
* a plain scalar that YAML converted into something that does not print back
  as typed (``0123`` -> 83, ``off`` -> False, ``1.50`` -> 1.5) loads as a
  :class:`Coerced` string that remembers the converted value and its line,
  so the validator can accept it where that type is meant (``synchronous_mode:
  yes``) and reject it, with the fix, where it is not (``password: 0123``);
* every mapping is a :class:`Located` dict that knows the line of each key.
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, ScalarNode


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"{key} given twice (first on line {first})")
        self.key, self.line, self.first = key, line, first


class Coerced(str):
    """What the user typed, where YAML 1.1 would have read something else (``value``)."""
    value: Any
    line: int

    @classmethod
    def of(cls, node: ScalarNode, value: Any) -> "Coerced":
        c = cls(node.value)
        c.value, c.line = value, node.start_mark.line + 1
        return c


class Located(dict):
    """A mapping that knows the (1-based) line of each of its keys."""
    lines: dict[Any, int]

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.lines = {}


class StrictLoader(yaml.SafeLoader):
    def construct_located_mapping(self, node: MappingNode) -> Located:
        self.flatten_mapping(node)
        out = Located()
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark) from None
            if key in out:
                raise DuplicateKey(key, line, out.lines[key])
            out[key] = self.construct_object(value_node, deep=True)
            out.lines[key] = line
        return out

    def construct_yaml_map(self, node: MappingNode):
        data = Located()
        yield data
        found = self.construct_located_mapping(node)
        data.update(found)
        data.lines = found.lines

    def _checked(self, node: ScalarNode, value: Any, same: bool) -> Any:
        # Only plain (unquoted) scalars are converted implicitly; quoted text is what it says.
        return value if same or node.style is not None else Coerced.of(node, value)

    def construct_yaml_bool(self, node: ScalarNode) -> Any:
        value = SafeConstructor.construct_yaml_bool(self, node)
        return self._checked(node, value, node.value.lower() in ("true", "false"))

    def construct_yaml_int(self, node: ScalarNode) -> Any:
        value = SafeConstructor.construct_yaml_int(self, node)
        return self._checked(node, value, node.value == str(value))

    def construct_yaml_float(self, node: ScalarNode) -> Any:
        value = SafeConstructor.construct_yaml_float(self, node)
        return self._checked(node, value, node.value in (str(value), repr(value)))


StrictLoader.add_constructor("tag:yaml.org,2002:map", StrictLoader.construct_yaml_map)
StrictLoader.add_constructor("tag:yaml.org,2002:bool", StrictLoader.construct_yaml_bool)
StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)
StrictLoader.add_constructor("tag:yaml.org,2002:float", StrictLoader.construct_yaml_float)


def load(text: str) -> Any:
    """Parse one YAML document with :class:`StrictLoader`."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def describe(value: Any) -> str:
    """A value named by its type, as an error message shows it: "the string '5432'"."""
    if isinstance(value, Coerced):
        return describe(value.value)
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"{type(value).__name__} {value!r}"
