"""Exception settings: every type in one form with one Save, times in hours or days with plain
labels; nothing saved while any field is wrong, each wrong field saying why; history per type."""

from __future__ import annotations

import pytest
from django.urls import reverse

from exceptions_app.forms import DurationField, SettingsPageForm
from exceptions_app.models import ExceptionTypeSetting
from exceptions_app.rules import REGISTRY, rules
from returnsync.roles import Role

pytestmark = pytest.mark.django_db


def page_as_rendered(client) -> dict[str, str]:
    """What the browser posts back for the page left as it is (every type's fields)."""
    page = client.get(reverse("exception_settings")).context["page"]
    data = {}
    for form in page.forms:
        data[f"{form.rule.code}-shown"] = "1"
        for field in form:
            value = field.value()
            if field.name == "is_enabled":
                if value:
                    data[field.html_name] = "on"
            elif isinstance(field.field, DurationField):
                parts = value if isinstance(value, list) else field.field.widget.decompress(value)
                for i, part in enumerate(parts):
                    data[f"{field.html_name}_{i}"] = "" if part is None else str(part)
            elif value is not None:
                data[field.html_name] = str(value)
    return data


def test_the_page_is_one_form_in_plain_words(client_for_role):
    body = client_for_role(Role.ADMIN).get(reverse("exception_settings")).content.decode()
    content = body[body.index('<div class="page-head">'):]
    assert content.count("<form") == 1 and content.count('type="submit"') == 1, "one form, one Save"
    assert "Time to handle it (SLA)" in body and "Refund allowed within" in body and "Grace period" in body
    assert 'name="refund_lag-sla_1"' in body and '<option value="days"' in body
    for code in REGISTRY:
        assert f'data-type="{code}"' in body


def test_saving_the_page_unchanged_writes_nothing(client_for_role):
    client = client_for_role(Role.ADMIN)
    response = client.post(reverse("exception_settings"), page_as_rendered(client), follow=True)
    assert "Nothing changed." in response.content.decode()
    assert not ExceptionTypeSetting.objects.exists()
    assert not ExceptionTypeSetting.history.exists()


def test_one_save_stores_several_types_in_days_and_hours(client_for_role):
    client = client_for_role(Role.ADMIN)
    data = page_as_rendered(client)
    data.update({"refund_lag-sla_0": "2", "refund_lag-sla_1": "days",
                 "refund_lag-t_lag_hours_0": "4", "refund_lag-t_lag_hours_1": "days",
                 "portal_bypass-t_grace_minutes_0": "1.5", "portal_bypass-t_grace_minutes_1": "hours"})
    data.pop("tracking_mismatch-is_enabled", None)
    response = client.post(reverse("exception_settings"), data, follow=True)
    stored = {s.type_code: s for s in ExceptionTypeSetting.objects.all()}
    assert set(stored) == {"refund_lag", "portal_bypass", "tracking_mismatch"}
    assert stored["refund_lag"].sla_minutes == 2 * 24 * 60 and stored["refund_lag"].thresholds == {"lag_hours": 96}
    assert stored["portal_bypass"].thresholds == {"grace_minutes": 90}
    assert stored["tracking_mismatch"].is_enabled is False
    assert "Saved:" in response.content.decode()
    again = {r.code: r for r in rules(include_disabled=True)}
    shown = page_as_rendered(client)
    assert (shown["refund_lag-sla_0"], shown["refund_lag-sla_1"]) == ("2", "days")
    assert again["refund_lag"].settings_thresholds["lag_hours"] == 96


def test_any_wrong_field_saves_nothing_and_each_says_why(client_for_role):
    client = client_for_role(Role.ADMIN)
    data = page_as_rendered(client)
    data.update({"refund_lag-sla_0": "3", "refund_lag-sla_1": "days",  # valid on its own
                 "portal_bypass-sla_0": "0", "portal_bypass-sla_1": "minutes",
                 "refund_lag-t_lag_hours_0": "90", "refund_lag-t_lag_hours_1": "minutes",
                 "refund_mismatch-t_tolerance_amount": "lots",
                 "restock_latency-sla_0": "9" * 12, "restock_latency-sla_1": "days"})
    response = client.post(reverse("exception_settings"), data)
    body = response.content.decode()
    assert response.status_code == 400
    assert not ExceptionTypeSetting.objects.exists(), "not even the valid type was saved"
    assert "Nothing was saved" in body
    assert "At least 1 minute." in body
    assert "Use whole hours (or a larger unit)." in body
    assert "Not a valid value: write something like 0.50." in body
    assert "Ensure that there are no more than 9 digits in total." in body
    assert body.count('class="field-invalid"') == 4


def test_a_post_that_leaves_a_type_out_leaves_it_alone(client_for_role):
    ExceptionTypeSetting.objects.create(type_code="refund_lag", sla_minutes=60)
    response = client_for_role(Role.ADMIN).post(reverse("exception_settings"), {"portal_bypass-shown": "1",
                                                                                "portal_bypass-is_enabled": "on"})
    assert response.status_code == 302
    assert ExceptionTypeSetting.objects.get(type_code="refund_lag").sla_minutes == 60
    assert not SettingsPageForm(rules(include_disabled=True), data={}).posted


def test_each_type_links_its_history_and_an_admin_restores_a_version(client_for_role):
    client = client_for_role(Role.ADMIN)
    data = page_as_rendered(client)
    client.post(reverse("exception_settings"), {**data, "refund_lag-sla_0": "2", "refund_lag-sla_1": "days"})
    client.post(reverse("exception_settings"), {**data, "refund_lag-sla_0": "5", "refund_lag-sla_1": "hours"})
    history = client.get(reverse("exception_setting_history", args=["refund_lag"])).content.decode()
    assert "SLA:</span> <span class=\"change-before\">2 days</span> → <span class=\"change-added\">5 h</span>" in history
    assert "by <span data-who>admin-user</span>" in history
    first = ExceptionTypeSetting.history.filter(type_code="refund_lag").order_by("history_id").first()
    restored = client.post(reverse("exception_setting_restore", args=[first.history_id]), follow=True)
    assert ExceptionTypeSetting.objects.get(type_code="refund_lag").sla_minutes == 2 * 24 * 60
    assert "Restored the version of" in restored.content.decode()
    assert ExceptionTypeSetting.history.filter(type_code="refund_lag").count() == 3, "a restore is a new change"
    assert client.get(reverse("exception_setting_history", args=["nope"])).status_code == 404
