"""The OpenTelemetry semantic-convention attribute registry: is a key one of its names?

Strategy: the registry is the installed ``opentelemetry-semantic-conventions`` package,
read as ``tools/doctrine_table.py`` reads it: one module-level ``str`` constant per
attribute in every module of ``opentelemetry.semconv.attributes`` (stable) and
``..._incubating.attributes``; a constant named ``<KEY>_TEMPLATE`` stands for
``<key>.<anything>`` (``http.request.header.<key>``). Loaded once, on first use: a
frozenset of names and a tuple of template prefixes.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re

REGISTRY_PACKAGES = ("opentelemetry.semconv.attributes", "opentelemetry.semconv._incubating.attributes")
_CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")


@functools.cache
def _load() -> tuple[frozenset[str], tuple[str, ...]]:
    names: set[str] = set()
    templates: set[str] = set()
    for package_name in REGISTRY_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package_name}.{info.name}")
            for name, value in vars(module).items():
                if isinstance(value, str) and _CONSTANT.fullmatch(name):
                    names.add(value)
                    if name == re.sub(r"[^A-Za-z0-9]", "_", value).upper() + "_TEMPLATE":
                        templates.add(value + ".")
    return frozenset(names), tuple(sorted(templates))


def known(key: str) -> bool:
    """Whether ``key`` is a registry attribute, or a key a registry template stands for."""
    names, templates = _load()
    return key in names or key.startswith(templates)
