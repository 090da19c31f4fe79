"""JSON round trip shared by the frozen config dataclasses of the models."""

from __future__ import annotations

from dataclasses import asdict, fields

__all__ = ["ConfigMixin"]


class ConfigMixin:
    """``to_dict`` gives JSON-ready fields (tuples as lists); ``from_dict`` rejects unknown fields by name."""

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        return cls(**d)
