"""Admin: the inbound events list (filters by source, status and error text, Retry in the row)
and one event's raw body and headers, with anything that could authenticate redacted."""

from __future__ import annotations

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from returnsync.choices import InboundStatus
from returnsync.roles import Role
from tests.factories import DeadLetterFactory, InboundEventFactory, ZigZagFixedLetterFactory

pytestmark = pytest.mark.django_db


def test_the_viewer_shows_the_raw_body_and_redacts_secret_headers(client_for_role):
    event = InboundEventFactory(
        headers={"Content-Type": "application/json", "X-Api-Key": "key-LEAK-1", "X-Auth-Token": "tok-LEAK-2",
                 "X-Request-Id": "req-77"},
        body=b'{"type": 12, "data": {"return_id": "4035001"}}',
    )
    page = client_for_role(Role.ADMIN).get(reverse("inbound_detail", args=[event.pk])).content.decode()
    assert "key-LEAK-1" not in page and "tok-LEAK-2" not in page
    assert page.count("data-redacted") == 2 and "req-77" in page
    assert "&quot;return_id&quot;: &quot;4035001&quot;" in page, "the body, JSON indented"
    assert reverse("inbound_retry", args=[event.pk]) not in page, "a processed event has no Retry"


def test_a_body_that_is_not_json_is_shown_as_text_and_a_dead_letter_offers_retry(client_for_role):
    event = DeadLetterFactory(body=b"<xml>not json</xml>", error="malformed JSON: Expecting value")
    page = client_for_role(Role.ADMIN).get(reverse("inbound_detail", args=[event.pk])).content.decode()
    assert "&lt;xml&gt;not json&lt;/xml&gt;" in page and "as text" in page
    assert "malformed JSON: Expecting value" in page
    assert reverse("inbound_retry", args=[event.pk]) in page


def test_unknown_event_is_a_404(client_for_role):
    assert client_for_role(Role.ADMIN).get(reverse("inbound_detail", args=[987654])).status_code == 404


def test_filters_by_source_status_and_error_text(client_for_role):
    dead = DeadLetterFactory(error="ValueError: event names no return")
    other_dead = DeadLetterFactory(error="KeyError: 'items'")
    tiktok = InboundEventFactory(status=InboundStatus.PROCESSED)
    client = client_for_role(Role.ADMIN)

    def listed(**params) -> set[int]:
        rows = client.get(reverse("inbound_list"), params).context["table"].rows
        return {row.record.pk for row in rows}

    assert listed(source="zigzag") == {dead.pk, other_dead.pk}
    assert listed(status="processed") == {tiktok.pk}
    assert listed(error="names no RETURN") == {dead.pk}, "case does not matter"
    assert listed(error="x" * 500) == {dead.pk, other_dead.pk, tiktok.pk}, "too long a filter is ignored, no 500"


def test_retry_from_the_list_reports_and_the_list_shows_the_truth(client_for_role):
    fixed = ZigZagFixedLetterFactory()
    broken = DeadLetterFactory()
    client = client_for_role(Role.ADMIN)
    back = reverse("inbound_list") + "?status=failed"
    listing = client.get(back).content.decode()
    assert reverse("inbound_retry", args=[fixed.pk]) in listing and reverse("inbound_retry", args=[broken.pk]) in listing

    applied = client.post(reverse("inbound_retry", args=[fixed.pk]), {"next": back}, follow=True).content.decode()
    assert f"Event {fixed.pk} applied" in applied
    assert reverse("inbound_retry", args=[fixed.pk]) not in applied, "no longer a dead letter"
    again = client.post(reverse("inbound_retry", args=[broken.pk]), {"next": back}, follow=True).content.decode()
    assert f"Event {broken.pk} failed again (attempt 2): ValueError: event names no return" in again
    assert reverse("inbound_retry", args=[broken.pk]) in again


def _count(client, url, params) -> int:
    client.get(url, params)
    with CaptureQueriesContext(db) as queries:
        assert client.get(url, params).status_code == 200
    return len(queries)


@pytest.mark.parametrize("params", [{}, {"status": "failed", "error": "names", "source": "zigzag"}])
def test_inbound_list_queries_do_not_grow_with_rows(client_for_role, params):
    client = client_for_role(Role.ADMIN)
    url = reverse("inbound_list")
    for _ in range(3):
        DeadLetterFactory()
        InboundEventFactory()
    with_3 = _count(client, url, params)
    for _ in range(27):
        DeadLetterFactory()
        InboundEventFactory()
    assert _count(client, url, params) == with_3
