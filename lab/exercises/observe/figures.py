"""Figures as dataclasses that are written as the JSON objects the evidence contract names
(lab.exercises.observe.evidence: result.json's writes, watch, split_brain, bounds) and read back
from files of any age: a key an older file lacks takes the field's default, a key this code no
longer knows is left out."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Mapping, TypeVar

F = TypeVar("F", bound="Figures")


def plain(value: Any) -> Any:
    """``value`` as JSON data: figures by their own keys, other dataclasses field by field."""
    if isinstance(value, Figures):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def known_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The items of ``data`` that are fields of the dataclass ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


class Figures:
    """Base of a figures dataclass. ``OPTIONAL``: keys written only when not None (the evidence
    has always left them out otherwise); ``readers()``: how to read a field that is itself typed."""
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def readers(cls) -> dict[str, Callable[[Any], Any]]:
        return {}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.name in self.OPTIONAL:
                continue
            out[f.name] = plain(value)
        return out

    @classmethod
    def from_json(cls: type[F], data: Mapping[str, Any] | None) -> F | None:
        """The figures in ``data`` (None for none: an absent or empty object)."""
        if not data:
            return None
        readers = cls.readers()
        return cls(**{k: readers[k](v) if k in readers and v is not None else v
                      for k, v in known_fields(cls, data).items()})
