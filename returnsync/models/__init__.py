"""The canonical domain: what both systems said about an order and its returns."""
from returnsync.models.catalog import (
    BundleComponent,
    BundleMapping,
    InventoryAdjustment,
    WarehouseMapping,
)
from returnsync.models.connections import Connection
from returnsync.models.orders import Order, OrderLine, OrderLineComponent
from returnsync.models.refunds import Refund
from returnsync.models.returns import (
    MarketplaceReturn,
    MarketplaceReturnLine,
    PortalReturn,
    PortalReturnLine,
)
from returnsync.models.sync import ApiCall, InboundEvent, SyncCursor, SyncRun, WriteBack
from returnsync.models.timeline import ReturnEvent

__all__ = [
    "ApiCall",
    "BundleComponent",
    "BundleMapping",
    "Connection",
    "InboundEvent",
    "InventoryAdjustment",
    "MarketplaceReturn",
    "MarketplaceReturnLine",
    "Order",
    "OrderLine",
    "OrderLineComponent",
    "PortalReturn",
    "PortalReturnLine",
    "Refund",
    "ReturnEvent",
    "SyncCursor",
    "SyncRun",
    "WarehouseMapping",
    "WriteBack",
]
