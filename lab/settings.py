"""The lab's Invoke settings (invoke.yaml's ``lab`` section, ``INVOKE_LAB_*``), checked in one line.

Invoke casts an environment value to the type of the value it overrides and
raises a traceback when it cannot (``INVOKE_LAB_MEMORY=lots``), and it ignores
a variable whose name matches no setting (``INVOKE_LAB_PROVDER=docker``).
:func:`check_environment` runs when ``tasks.py`` loads, before Invoke reads the
environment; :func:`validate` checks the merged settings before every command.
A new setting in invoke.yaml needs its entry in :data:`SCHEMA` (a unit test
compares the two).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from labcore.exitcodes import Refusal
from labcore.strict_yaml import describe
from labcore.suggest import unknown

ENV_PREFIX = "INVOKE_LAB_"
PROVIDERS = ("auto", "docker", "libvirt", "virtualbox", "pulumi", "hosts")


class SettingsError(Refusal, ValueError):
    """A setting that cannot be used; the message is one line and names where it was set."""


def _whole(low: int, high: int, unit: str) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, str) and v.strip().isdigit():      # from the environment
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"must be a whole number of {unit}, got {describe(v)}")
        if not low <= v <= high:
            raise ValueError(f"must be {low}-{high} {unit}, got {v}")
        return v
    return check


def _seconds(v: Any) -> float:
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            raise ValueError(f"must be a number of seconds, got {describe(v)}") from None
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise ValueError(f"must be a number of seconds, got {describe(v)}")
    if not 1 <= v <= 3600:
        raise ValueError(f"must be 1-3600 seconds, got {v:g}")
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be a string, got {describe(v)}")
    return v


def _provider(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be one of {', '.join(PROVIDERS)}, got {describe(v)}")
    if v not in PROVIDERS:
        raise ValueError(unknown("provider", v, PROVIDERS))
    return v


DOMAIN_TYPES = ("auto", "kvm", "qemu")


def _domain_type(v: Any) -> str:
    if not isinstance(v, str) or v not in DOMAIN_TYPES:
        raise ValueError(unknown("domain type", str(v), DOMAIN_TYPES))
    return v


SCHEMA: dict[str, Callable[[Any], Any]] = {
    "provider": _provider,
    "box": _text,
    "memory": _whole(256, 1024 * 1024, "MiB"),
    "cpus": _whole(1, 256, "vCPUs"),
    "apt_cache": _text,
    "ssh_wait": _seconds,
    "inventory": _text,
    "domain_type": _domain_type,
}


def _where(key: str, environ: Mapping[str, str]) -> str:
    var = ENV_PREFIX + key.upper()
    return f"{var}={environ[var]}" if var in environ else f"invoke.yaml lab.{key}"


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Every ``INVOKE_LAB_*`` variable names a setting and holds a value it accepts."""
    env = os.environ if environ is None else environ
    for var in sorted(v for v in env if v.startswith(ENV_PREFIX)):
        key = var[len(ENV_PREFIX):].lower()
        if key not in SCHEMA:
            hint = unknown("setting", var, [ENV_PREFIX + k.upper() for k in SCHEMA])
            raise SettingsError(f"{var}: {hint}")
        try:
            SCHEMA[key](env[var])
        except ValueError as e:
            raise SettingsError(f"{var}={env[var]}: {e}") from None


def validate(settings: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The merged ``lab`` settings, each checked; unknown keys are errors too."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in SCHEMA:
            raise SettingsError(f"invoke.yaml lab.{key}: {unknown('setting', key, SCHEMA)}")
        try:
            out[key] = SCHEMA[key](value)
        except ValueError as e:
            raise SettingsError(f"{_where(key, env)}: {e}") from None
    return out
