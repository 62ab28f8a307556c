"""The Content Security Policy every page is served with, and templates that can run under
it (no inline script, style block or style attribute). The browser tests check the pages
in Chromium (tests/browser/conftest.py fails on any violation)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from returnsync.roles import Role

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["home", "exception_list", "return_list", "finance", "sync_health"])
def test_pages_are_served_with_a_strict_policy(client_for_role, url_name):
    response = client_for_role(Role.ADMIN).get(reverse(url_name))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy


def test_login_page_has_the_policy_too(client):
    assert "default-src 'self'" in client.get(reverse("login"))["Content-Security-Policy"]


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_carries_inline_script_or_style(template):
    text = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script>: move it to static/js/app.js"
    assert "<style" not in text, "inline <style>: move it to static/css/app.css"
    assert not re.search(r"\sstyle=", text), "style attribute: use a class"
    assert not re.search(r"\son[a-z]+=", text), "inline event handler: use a delegated listener"
    assert "hx-on" not in text and "js:" not in text, "htmx script attributes need eval"
