"""Providers create machines and publish only how to reach them.

A registry by name: each provider lives in its own module, imported only when
asked for, so a host without (say) Pulumi still runs the docker path. A module
plugs in by defining ``provider(name, settings) -> Provider`` (see
:mod:`lab.providers.base` for the protocol).
"""
from __future__ import annotations

import importlib
from typing import Any, Mapping

from lab.providers.base import Provider, ProviderError

# provider name -> module under lab.providers
MODULES: dict[str, str] = {
    "docker": "vagrant",
    "libvirt": "vagrant",
    "virtualbox": "vagrant",
    "pulumi": "pulumi",
    "hosts": "hosts",
}
NAMES = tuple(MODULES)


def get(name: str, settings: Mapping[str, Any] | None = None) -> Provider:
    """The provider called ``name``, configured from ``settings`` (invoke.yaml's ``lab`` section)."""
    if name not in MODULES:
        raise ProviderError(f"provider: unknown provider {name!r} (known: {', '.join(NAMES)})")
    try:
        module = importlib.import_module(f"lab.providers.{MODULES[name]}")
    except ModuleNotFoundError as e:
        raise ProviderError(f"provider {name}: not available here ({e})") from None
    return module.provider(name, dict(settings or {}))
