"""Test-only services: each subpackage declares one service through the registry alone (its own hook,
emulator and task classes, plus one ``services.register`` call), and the shared suites (fault matrix,
bad input, secret sweep, restarts, hook contract) run it like the five real ones.

Importing this package registers every subpackage's service; ``tests/matrix.py`` does that.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
