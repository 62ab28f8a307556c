from django.apps import AppConfig


class ZigZagConfig(AppConfig):
    """The ZigZag connector: client, mapping, webhooks, mirror/receipt/restock jobs, CSV fallback."""

    name = "connectors.zigzag"
    label = "zigzag"
    verbose_name = "ZigZag connector"
