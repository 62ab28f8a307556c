"""factory-boy factories for every core model."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from returnsync import models
from returnsync.choices import Grade, JobStatus, RefundStatus, Stage, System, TimelineKind

DEMO_PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", DEMO_PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            for role in extracted:
                self.groups.add(Group.objects.get_or_create(name=str(role))[0])
        if create:
            self.save()


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Connection

    name = factory.Sequence(lambda n: f"Account {n}")
    kind = System.TIKTOK_SHOP
    base_url = "http://127.0.0.1:8000/sandbox/tiktok"
    credentials = factory.LazyFunction(lambda: {"app_key": "demo-app", "app_secret": "s3cr3t-app-secret"})
    webhook_secret = "whsec-demo-secret"
    is_sandbox = True


class PortalConnectionFactory(ConnectionFactory):
    kind = System.ZIGZAG
    base_url = "http://127.0.0.1:8000/sandbox/zigzag"
    credentials = factory.LazyFunction(lambda: {"username": "ops@brand.example", "password": "zz-password"})


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Order

    connection = factory.SubFactory(ConnectionFactory)
    order_id = factory.Sequence(lambda n: f"5770{n:011d}")
    raw_status = "DELIVERED"
    buyer_postal_code = factory.Sequence(lambda n: f"{90000 + n % 9999:05d}")
    currency = "USD"
    placed_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=10))
    source_updated_at = factory.LazyFunction(timezone.now)


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.OrderLine

    order = factory.SubFactory(OrderFactory)
    line_id = factory.Sequence(lambda n: f"L{n:08d}")
    sku_id = factory.Sequence(lambda n: f"17{n:08d}")
    seller_sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    product_id = factory.Sequence(lambda n: f"P{n:06d}")
    product_name = "Everyday Tee"
    sale_price = Decimal("24.00")
    currency = "USD"


class OrderLineComponentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.OrderLineComponent

    line = factory.SubFactory(OrderLineFactory)
    sku_id = factory.Sequence(lambda n: f"18{n:08d}")
    seller_sku = factory.Sequence(lambda n: f"COMP-{n:04d}")
    quantity = 1


class MarketplaceReturnFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.MarketplaceReturn

    order = factory.SubFactory(OrderFactory)
    connection = factory.SelfAttribute("order.connection")
    order_ref = factory.SelfAttribute("order.order_id")
    return_id = factory.Sequence(lambda n: f"4035{n:011d}")
    return_type = "RETURN_AND_REFUND"
    raw_status = "AWAITING_BUYER_SHIP"
    stage = Stage.APPROVED
    role = "BUYER"
    reason = "Wrong size"
    tracking_number = factory.Sequence(lambda n: f"1Z999AA1{n:010d}")
    carrier = "UPS"
    refund_total = Decimal("24.00")
    currency = "USD"
    next_action = "SELLER_RESPOND_RECEIVE_PACKAGE"
    next_action_deadline = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=30))
    source_created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=2))
    source_updated_at = factory.LazyFunction(timezone.now)


class MarketplaceReturnLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.MarketplaceReturnLine

    marketplace_return = factory.SubFactory(MarketplaceReturnFactory)
    line_id = factory.Sequence(lambda n: f"RL{n:08d}")
    order_line_id = factory.Sequence(lambda n: f"L{n:08d}")
    sku_id = factory.Sequence(lambda n: f"17{n:08d}")
    seller_sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    product_name = "Everyday Tee"
    refund_amount = Decimal("24.00")
    currency = "USD"


class PortalReturnFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.PortalReturn

    marketplace_return = factory.SubFactory(MarketplaceReturnFactory)
    connection = factory.SubFactory(PortalConnectionFactory)
    order = factory.SelfAttribute("marketplace_return.order")
    order_ref = factory.SelfAttribute("marketplace_return.order_ref")
    return_ref = factory.SelfAttribute("marketplace_return.return_id")
    external_id = factory.Sequence(lambda n: f"ZZ-{n:07d}")
    raw_status = "Approved"
    stage = Stage.APPROVED
    tracking_number = factory.SelfAttribute("marketplace_return.tracking_number")
    carrier = "UPS"
    authorized_refund = Decimal("24.00")
    currency = "USD"
    source_created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=2))
    source_updated_at = factory.LazyFunction(timezone.now)


class PortalReturnLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.PortalReturnLine

    portal_return = factory.SubFactory(PortalReturnFactory)
    line_id = factory.Sequence(lambda n: f"PL{n:08d}")
    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    product_name = "Everyday Tee"
    expected_quantity = 1
    received_quantity = 0
    grade = Grade.PENDING
    unit_price = Decimal("24.00")
    currency = "USD"


class RefundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Refund

    marketplace_return = factory.SubFactory(MarketplaceReturnFactory)
    connection = factory.SelfAttribute("marketplace_return.connection")
    order_ref = factory.SelfAttribute("marketplace_return.order_ref")
    external_id = factory.Sequence(lambda n: f"RF{n:08d}")
    amount = Decimal("24.00")
    currency = "USD"
    raw_status = "SUCCESS"
    status = RefundStatus.SUCCEEDED
    refunded_at = factory.LazyFunction(timezone.now)


class BundleMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.BundleMapping

    bundle_sku = factory.Sequence(lambda n: f"BNDL-{n:04d}")
    name = "Starter kit"


class BundleComponentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.BundleComponent

    bundle = factory.SubFactory(BundleMappingFactory)
    component_sku = factory.Sequence(lambda n: f"COMP-{n:04d}")
    quantity = 1
    price_share = Decimal("1")


class WarehouseMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.WarehouseMapping

    connection = factory.SubFactory(PortalConnectionFactory)
    location_code = factory.Sequence(lambda n: f"WH{n:02d}")
    tiktok_warehouse_id = factory.Sequence(lambda n: f"7{n:018d}")
    name = "Main DC"


class WriteBackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.WriteBack

    marketplace_return = factory.SubFactory(MarketplaceReturnFactory)
    connection = factory.SelfAttribute("marketplace_return.connection")
    action = "approve_received_package"
    payload = factory.LazyFunction(lambda: {"decision": "APPROVE_RECEIVED_PACKAGE"})
    idempotency_key = factory.Sequence(lambda n: f"approve_received_package:{n}")
    status = JobStatus.QUEUED


class InventoryAdjustmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.InventoryAdjustment

    seller_sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    sku_id = factory.Sequence(lambda n: f"17{n:08d}")
    product_id = factory.Sequence(lambda n: f"P{n:06d}")
    warehouse_id = "7000000000000000001"
    delta = 1
    idempotency_key = factory.Sequence(lambda n: f"restock:{n}")
    status = JobStatus.QUEUED


class InboundEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.InboundEvent

    connection = factory.SubFactory(ConnectionFactory)
    source = System.TIKTOK_SHOP
    event_type = "12"
    dedupe_key = factory.Sequence(lambda n: f"notif-{n:08d}")
    headers = factory.LazyFunction(lambda: {"Content-Type": "application/json"})
    body = b'{"type": 12, "data": {"return_id": "1"}}'
    subject_ref = factory.Sequence(lambda n: f"4035{n:011d}")


class DeadLetterFactory(InboundEventFactory):
    """A ZigZag webhook whose body names no return: processing it again fails again, at once
    and with no HTTP call (``ZigZagFixedLetterFactory`` is one that now applies)."""

    connection = factory.SubFactory(PortalConnectionFactory)
    source = System.ZIGZAG
    event_type = "return.updated"
    body = b'{"event": "return.updated", "event_id": "evt-broken"}'
    status = "failed"
    attempts = 1
    error = "ValueError: event names no return"


class ZigZagFixedLetterFactory(DeadLetterFactory):
    """A dead letter (the processor failed once) whose body applies on retry: a ZigZag return
    with its items, for an order TikTok does not know (it lands as a portal-only record)."""

    body = factory.Sequence(lambda n: (
        b'{"event": "return.updated", "event_id": "evt-%d", "return": {"id": "ZZ-R%d", "reference": "", '
        b'"order_reference": "5799%08d", "status": "label_created", "items": [{"sku": "TEE-1", "quantity": 1}]}}'
        % (n, n, n)))
    error = "OperationalError: database is locked"


class ApiCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ApiCall

    connection = factory.SubFactory(ConnectionFactory)
    method = "POST"
    path = "/return_refund/202309/returns/search"
    http_status = 200
    api_code = "0"
    duration_ms = 42
    request_id = factory.Sequence(lambda n: f"req-{n:08d}")


class SyncCursorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SyncCursor

    connection = factory.SubFactory(ConnectionFactory)
    stream = factory.Sequence(lambda n: f"returns-{n}")
    watermark = factory.LazyFunction(timezone.now)


class SyncRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SyncRun

    connection = factory.SubFactory(ConnectionFactory)
    job = "poll_returns"
    stream = "returns"
    status = "succeeded"
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)
    counts = factory.LazyFunction(lambda: {"fetched": 50, "created": 10, "updated": 40})


class ReturnEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ReturnEvent

    marketplace_return = factory.SubFactory(MarketplaceReturnFactory)
    order_ref = factory.SelfAttribute("marketplace_return.order_ref")
    return_ref = factory.SelfAttribute("marketplace_return.return_id")
    system = System.TIKTOK_SHOP
    kind = TimelineKind.STATUS_CHANGED
    summary = "Status changed to AWAITING_BUYER_SHIP"
    occurred_at = factory.LazyFunction(timezone.now)
