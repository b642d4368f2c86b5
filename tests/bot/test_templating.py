"""The one renderer (bot/templating.py): sandboxed, and bounded in the work a short text can ask for."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from bot.templating import MAX_OUTPUT_CHARS, render


def test_ordinary_texts_render():
    assert render("Halo {{ name }}! {{ 'ab' * 3 }} {{ 2 ** 10 }}", {"name": "Budi"}) == "Halo Budi! ababab 1024"


@pytest.mark.parametrize("text", [
    "{{ 'x' * 10**8 }}",  # issue 15: 100 MB from one line
    "{{ 10**8 * 'x' }}",
    "{{ [1] * 10**7 }}",
    "{{ 2 ** 1000000 }}",
    "{{ (10 ** 10) ** 10 }}",
    "{% for i in range(100000) %}xx{% endfor %}",  # many small parts: stopped at the output limit
])
def test_unbounded_work_is_refused(text):
    with pytest.raises(SecurityError):
        render(text, {})


def test_the_output_limit_is_exact():
    assert len(render("{{ 'x' * n }}", {"n": MAX_OUTPUT_CHARS})) == MAX_OUTPUT_CHARS
    with pytest.raises(SecurityError):
        render("{{ 'x' * n }}y", {"n": MAX_OUTPUT_CHARS})
