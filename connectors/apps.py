from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """What every connector shares: the webhook receiver, the poll task, the write-back
    runner and their schedules. Registers with the core how a stored event or a write-back
    is queued, so core services (retry buttons) need no import of this package."""

    name = "connectors"
    label = "connectors"
    verbose_name = "Connectors (shared plumbing)"

    def ready(self) -> None:
        from connectors import jobs, tasks, webhooks
        from returnsync import registry

        registry.plumbing_register(inbound_enqueue=webhooks.inbound_event_enqueue,
                                   write_back_enqueue=jobs.write_back_enqueue,
                                   inbound_process=webhooks.inbound_event_process)
        registry.schedule_setup_register(tasks.schedules_ensure)
