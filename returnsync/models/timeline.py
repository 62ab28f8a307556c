from __future__ import annotations

from django.conf import settings
from django.db import models

from returnsync.choices import System, TimelineKind


class ReturnEvent(models.Model):
    """One thing that happened to a return, in either system. Written only through
    ``returnsync.timeline.timeline_record``; read through ``returnsync.selectors``.

    Anchored on the TikTok ids (``order_ref``, ``return_ref``) so events recorded
    before the systems were linked still land on the same timeline.
    """

    order_ref = models.CharField(max_length=64, blank=True, default="")
    return_ref = models.CharField(max_length=64, blank=True, default="")
    marketplace_return = models.ForeignKey(
        "returnsync.MarketplaceReturn", on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    portal_return = models.ForeignKey(
        "returnsync.PortalReturn", on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    system = models.CharField(max_length=20, choices=System.choices)
    kind = models.CharField(max_length=32, choices=TimelineKind.choices)
    summary = models.CharField(max_length=300)
    data = models.JSONField(blank=True, default=dict)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            # A constraint, not unique=True: PostgreSQL would add a second (LIKE) index for that.
            models.UniqueConstraint(fields=["dedupe_key"], name="returnevent_unique_dedupe_key"),
        ]
        indexes = [
            models.Index(fields=["return_ref", "occurred_at"], name="returnevent_return_ref_idx"),
            models.Index(fields=["order_ref", "occurred_at"], name="returnevent_order_ref_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.get_system_display()}: {self.summary}"
