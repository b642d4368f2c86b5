"""The one template renderer: sandboxed Jinja2, so config texts cannot reach Python internals."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=1024)
def compile_template(text: str) -> Template:
    return _env.from_string(text)


def render(text: str, variables: dict[str, Any]) -> str:
    """Render a reply text; a missing variable is an error, never an empty gap in a customer message."""
    return compile_template(text).render(**variables).strip()
