"""Factories for exceptions (the detection pass is not called: tests make cases directly)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus, Severity, SubjectKind
from exceptions_app.models import ExceptionActivity, ExceptionCase
from returnsync.choices import Grade
from returnsync.money import partial_refund_compute
from returnsync.roles import Role
from tests.factories import PortalReturnFactory, PortalReturnLineFactory


class ExceptionCaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExceptionCase

    type_code = "tracking_mismatch"
    subject_kind = SubjectKind.PORTAL_RETURN
    subject_id = factory.Sequence(lambda n: 10_000 + n)
    subject_key = factory.LazyAttribute(lambda o: f"{o.subject_kind}:{o.subject_id}")
    owner_role = Role.CX
    severity = Severity.MEDIUM
    status = ExceptionStatus.OPEN
    title = factory.Sequence(lambda n: f"Tracking differs on return {n}")
    system = "zigzag"
    order_ref = factory.Sequence(lambda n: f"5770{n:011d}")
    return_ref = factory.Sequence(lambda n: f"4035{n:011d}")
    portal_ref = factory.Sequence(lambda n: f"ZZ-{n:07d}")
    tracking_numbers = factory.Sequence(lambda n: f"1Z999AA1{n:08d}")
    buyer_postal_code = "94107"
    evidence = factory.LazyFunction(lambda: {
        "tiktok": {"tracking_number": "1Z999AA10000001", "carrier": "UPS"},
        "portal": {"tracking_number": "1Z999AA19999999", "carrier": "UPS"},
        "computed": {},
    })
    opened_at = factory.LazyFunction(timezone.now)
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=24))


class ExceptionActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExceptionActivity

    exception = factory.SubFactory(ExceptionCaseFactory)
    verb = "opened"
    to_status = ExceptionStatus.OPEN


def partial_refund_case(**kwargs) -> ExceptionCase:
    """A finance partial-refund case on a received portal return: 2 tees expected, 1 came
    back, and a cap came back damaged. Evidence carries the computed refund."""
    portal = PortalReturnFactory(received_at=timezone.now())
    PortalReturnLineFactory(portal_return=portal, sku="TEE-1", product_name="Everyday Tee", expected_quantity=2,
                            received_quantity=1, grade=Grade.SELLABLE, unit_price=Decimal("20.00"))
    PortalReturnLineFactory(portal_return=portal, sku="CAP-1", product_name="Cap", expected_quantity=1,
                            received_quantity=1, grade=Grade.DAMAGED, unit_price=Decimal("15.00"))
    computed = partial_refund_compute(portal_return=portal)
    defaults = {
        "type_code": "partial_refund", "owner_role": Role.FINANCE, "title": f"Partial refund on {portal.external_id}",
        "subject_id": portal.pk, "portal_return": portal, "marketplace_return": portal.marketplace_return,
        "order_ref": portal.order_ref, "return_ref": portal.return_ref, "portal_ref": portal.external_id,
        "amount": computed.refund_amount, "currency": computed.currency,
        "evidence": {"tiktok": {"refund_total": "55.00"}, "portal": {"authorized_refund": "55.00"},
                     "computed": {"partial_refund": computed.as_json()}},
    }
    defaults.update(kwargs)
    return ExceptionCaseFactory(**defaults)
