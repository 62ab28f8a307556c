"""Settings are bounded, and a rule that failed in its last pass says so on the runbook,
the settings page and sync health (issue 12, item 5)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from exceptions_app.models import ExceptionTypeSetting
from exceptions_app.tasks import detect_full
from returnsync.roles import Role

pytestmark = pytest.mark.django_db


def _post(client, code="refund_lag", **fields):
    data = {f"{code}-shown": "1", f"{code}-is_enabled": "on"}
    data.update({f"{code}-{k}": v for k, v in fields.items()})
    return client.post(reverse("exception_settings"), data)


@pytest.mark.parametrize("fields, reason", [
    ({"t_lag_hours_0": "99999999999999999999999", "t_lag_hours_1": "hours"}, "no more than 9 digits"),
    ({"t_lag_hours_0": "9000", "t_lag_hours_1": "hours"}, "At most 365 days"),
    ({"t_lag_hours_0": "367", "t_lag_hours_1": "days"}, "At most 365 days"),
    ({"sla_0": "91", "sla_1": "days"}, "At most 90 days"),
])
def test_an_absurd_setting_is_refused_with_the_range_and_nothing_is_stored(client_for_role, fields, reason):
    admin = client_for_role(Role.ADMIN)
    assert _post(admin, t_lag_hours_0="48", t_lag_hours_1="hours").status_code == 302
    response = _post(admin, **fields)
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert ExceptionTypeSetting.objects.get(type_code="refund_lag").thresholds == {"lag_hours": 48}


def test_money_and_percent_thresholds_have_their_own_ranges(client_for_role):
    admin = client_for_role(Role.ADMIN)
    response = _post(admin, "refund_mismatch", t_tolerance_percent="250")
    assert response.status_code == 400 and "choose from 0 to 100" in response.content.decode()
    page = admin.get(reverse("exception_settings")).content.decode()
    assert "Default: 3 days; 0 minutes to 366 days." in page  # refund_lag's lag_hours, in plain units


def test_a_rule_failing_in_its_last_pass_is_shown_where_people_look(client_for_role):
    # A value stored before settings were bounded: every pass of the rule raises.
    ExceptionTypeSetting.objects.create(type_code="refund_lag", thresholds={"lag_hours": 99999999999999999999999})
    counts = detect_full()
    assert "OverflowError" in counts["types"]["refund_lag"]["error"]
    admin = client_for_role(Role.ADMIN)
    runbook = admin.get(reverse("runbook")).content.decode()
    assert 'data-rule-failed="refund_lag"' in runbook and 'data-rule-failure="refund_lag"' in runbook
    assert "OverflowError" in runbook
    settings_page = admin.get(reverse("exception_settings")).content.decode()
    assert 'data-rule-failure="refund_lag"' in settings_page
    health = admin.get(reverse("sync_health")).content.decode()
    assert "Detection rules failing" in health and 'data-rule-failure="refund_lag"' in health
    # Fixed: the next pass succeeds and the warnings go.
    ExceptionTypeSetting.objects.filter(type_code="refund_lag").update(thresholds={"lag_hours": 72})
    detect_full()
    assert 'data-rule-failure="refund_lag"' not in admin.get(reverse("runbook")).content.decode()
    assert "Detection rules failing" not in admin.get(reverse("sync_health")).content.decode()
