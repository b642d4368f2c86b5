"""The one template renderer: sandboxed Jinja2, so config texts cannot reach Python internals."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, meta
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

# A reply or broadcast text is a message, not a document (issue 15: "{{ 'x' * 10**8 }}" rendered 100 MB).
MAX_OUTPUT_CHARS = 20_000
MAX_REPEAT_CHARS = 20_000  # what one "*" or "**" may build
MAX_POWER = 10**12


class _BoundedEnvironment(SandboxedEnvironment):
    """The sandbox, plus bounds on the two operators that turn a short template into unbounded work."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(left, int | float) and isinstance(right, int | float) and abs(right) > 64:
                raise SecurityError("a power above 64 is not allowed in a template")
            result = super().call_binop(context, operator, left, right)
            if isinstance(result, int) and abs(result) > MAX_POWER:
                raise SecurityError("a number that large is not allowed in a template")
            return result
        if isinstance(left, str | list | tuple) and isinstance(right, int) and len(left) * right > MAX_REPEAT_CHARS:
            raise SecurityError(f"a repetition longer than {MAX_REPEAT_CHARS} is not allowed in a template")
        if isinstance(right, str | list | tuple) and isinstance(left, int) and len(right) * left > MAX_REPEAT_CHARS:
            raise SecurityError(f"a repetition longer than {MAX_REPEAT_CHARS} is not allowed in a template")
        return super().call_binop(context, operator, left, right)


_env = _BoundedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def variables_in(text: str) -> set[str]:
    """The variables a text uses. Parsed by the bounded sandbox: a plain environment would fold a constant
    such as "2 ** 1000000" while checking it, which is the unbounded work the bounds exist to refuse."""
    return meta.find_undeclared_variables(_env.parse(text))


@lru_cache(maxsize=1024)
def compile_template(text: str) -> Template:
    return _env.from_string(text)


def render(text: str, variables: dict[str, Any]) -> str:
    """Render a reply text; a missing variable is an error, never an empty gap in a customer message.

    Raises jinja2's SecurityError for unbounded work (a huge repetition or power) or an output longer than
    MAX_OUTPUT_CHARS; rendering is streamed, so an over-long output stops as soon as it passes the limit.
    """
    parts: list[str] = []
    size = 0
    for part in compile_template(text).generate(**variables):
        size += len(part)
        if size > MAX_OUTPUT_CHARS:
            raise SecurityError(f"the text renders longer than {MAX_OUTPUT_CHARS} characters")
        parts.append(part)
    return "".join(parts).strip()
