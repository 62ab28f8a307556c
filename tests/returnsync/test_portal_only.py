"""A portal record linked to no TikTok return is findable from the return lookup, has its
own page, and operations links it to the TikTok return it belongs to (the orphan case then
closes and the gate follows)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus
from exceptions_app.detection import detection_run
from exceptions_app.models import ExceptionCase
from exceptions_app.rules.base import Scope
from returnsync.models import PortalReturn, ReturnEvent
from returnsync.roles import Role
from tests.factories import MarketplaceReturnFactory, PortalReturnFactory, PortalReturnLineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def orphan():
    pr = PortalReturnFactory(marketplace_return=None, order=None, order_ref="579999999999", return_ref="",
                             external_id="ZZ-ORPHAN-1", tracking_number="1ZORPHAN",
                             source_created_at=timezone.now() - timedelta(hours=3))
    PortalReturnLineFactory(portal_return=pr, sku="TEE")
    return pr


@pytest.mark.parametrize("q", ["ZZ-ORPHAN-1", "579999999999", "1zorphan"])
def test_the_return_lookup_finds_an_orphan_by_its_portal_id_order_or_tracking(orphan, client_for_role, q):
    response = client_for_role(Role.CX).get(reverse("return_lookup"), {"q": q})
    assert response.status_code == 302 and response.url == reverse("portal_return_detail", args=[orphan.pk])
    page = client_for_role(Role.CX).get(response.url).content.decode()
    assert "Linked to no TikTok return." in page and "ZZ-ORPHAN-1" in page
    assert 'id="link-records"' not in page  # CX reads it; operations links it


def test_operations_links_the_orphan_and_its_case_closes(orphan, client_for_role):
    detection_run(scope=Scope())
    case = ExceptionCase.objects.get(type_code="orphan_portal_return", portal_return=orphan)
    target = MarketplaceReturnFactory(order__buyer_postal_code="94107")
    ops = client_for_role(Role.OPERATIONS)
    url = reverse("portal_return_detail", args=[orphan.pk])
    page = ops.get(url, {"q": target.order_ref}).content.decode()
    assert f"choose={target.pk}" in page
    confirm = ops.get(url, {"q": target.order_ref, "choose": target.pk}).content.decode()
    assert 'data-field="confirm-link"' in confirm and target.return_id in confirm
    assert client_for_role(Role.CX).post(reverse("portal_return_link", args=[orphan.pk]),
                                         {"marketplace_return": target.pk}).status_code == 403
    response = ops.post(reverse("portal_return_link", args=[orphan.pk]), {"marketplace_return": target.pk})
    assert response.status_code == 302 and response.url == reverse("return_detail", args=[target.pk])
    orphan.refresh_from_db()
    assert (orphan.marketplace_return_id, orphan.order_ref, orphan.return_ref) == (
        target.pk, target.order_ref, target.return_id)
    assert ReturnEvent.objects.filter(portal_return=orphan, summary__startswith="Linked by hand").exists()
    detection_run(scope=Scope())
    assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.AUTO_RESOLVED
    # Linked twice is refused with the reason.
    again = ops.post(reverse("portal_return_link", args=[orphan.pk]), {"marketplace_return": target.pk}, follow=True)
    assert "Already linked" in again.content.decode()
    assert PortalReturn.objects.filter(marketplace_return=target).count() == 1


def test_the_returns_list_shows_portal_only_matches_beside_tiktok_ones(orphan, client_for_role):
    page = client_for_role(Role.CX).get(reverse("return_list"), {"q": "579999999999"}).content.decode()
    assert 'data-results="portal-only"' in page and reverse("portal_return_detail", args=[orphan.pk]) in page
