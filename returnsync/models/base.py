from __future__ import annotations

from django.db import models

MONEY = {"max_digits": 14, "decimal_places": 2}


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def money_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(**MONEY, **kwargs)


def currency_field(**kwargs) -> models.CharField:
    return models.CharField(max_length=3, blank=True, default="", **kwargs)


def non_negative(field: str, model: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=models.Q(**{f"{field}__gte": 0}) | models.Q(**{f"{field}__isnull": True}),
        name=f"{model}_{field}_non_negative",
    )
