"""Functions a user names as `module:function`, imported only from allow-listed modules.

A name in a request is code the service will run: a chat's tools (and any other place a user
names a function) go through `import_user_function`, which refuses modules outside the
operator's allow-list before importing anything.

    fn = import_user_function("my_tools.weather:forecast", allowed=["my_tools"], what="tool",
                              setting="FINETUNE_AGENT_TOOL_MODULES")

A prefix allows the module itself and its submodules (`my_tools` allows `my_tools.weather`).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

METRIC_MODULES_SETTING = "FINETUNE_AGENT_METRIC_MODULES"
"""Modules whose functions `evaluation.metrics` may name (read where the metric is computed)."""
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class UserFunctionError(ValueError):
    """A named function that may not or cannot be used; the message says why and what to do."""


def modules_from_env(name: str) -> list[str]:
    """The comma-separated module names an operator set in environment variable `name`."""
    return [m.strip() for m in os.environ.get(name, "").split(",") if m.strip()]


def module_allowed(module: str, allowed: Iterable[str]) -> bool:
    """Whether `module` is one of `allowed` or inside one of them."""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in allowed if prefix)


def import_user_function(
    spec: str, *, allowed: Iterable[str], what: str, setting: str
) -> Callable[..., Any]:
    """The function `spec` ("package.module:function") names, if its module is allow-listed."""
    if not _SPEC.match(spec):
        raise UserFunctionError(
            f"{what} {spec!r}: write it as 'package.module:function' (a module path, a colon, "
            "a function name)"
        )
    module_name, function_name = spec.split(":")
    allowed = list(allowed)
    if not module_allowed(module_name, allowed):
        listed = ", ".join(allowed) if allowed else "none are allowed yet"
        raise UserFunctionError(
            f"{what} {spec!r}: module '{module_name}' is not allow-listed ({listed}); the "
            f"operator allows modules with {setting}=module1,module2"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserFunctionError(
            f"{what} {spec!r}: cannot import module '{module_name}' ({exc}); is it installed?"
        ) from None
    except (Exception, SystemExit) as exc:  # the module's own code can fail any way, even exit
        raise UserFunctionError(
            f"{what} {spec!r}: importing module '{module_name}' failed: "
            f"{type(exc).__name__}: {exc}; fix the module, or name another"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserFunctionError(
            f"{what} {spec!r}: '{module_name}' has no function '{function_name}'"
        )
    return function
