"""Operations imports a bundle CSV with one bad row: nothing is saved and the row is named;
fixed, the same file imports and the bundles are listed."""

from __future__ import annotations

import pytest

from returnsync.models import BundleMapping
from returnsync.roles import Role
from tests.browser.test_login import log_in
from tests.factories import DEMO_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = "bundle_sku,name,is_active,component_sku,quantity,price_share\n"
GOOD = "KIT-1,Starter kit,yes,TEE-1,1,0.6\nKIT-1,Starter kit,yes,CAP-1,1,0.4\n"
BAD_ROW = "KIT-2,Duo,yes,MUG-1,two,1\n"


def test_ops_imports_bundles_with_one_bad_row(page, live_server, screenshot, tmp_path):
    UserFactory(username="ops-user", roles=[Role.OPERATIONS])
    bad_file = tmp_path / "bundles.csv"
    bad_file.write_text(HEADER + GOOD + BAD_ROW)

    log_in(page, live_server, "ops-user", DEMO_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Bundles", exact=True
    ).click()
    page.get_by_role("link", name="Import CSV").click()
    page.set_input_files("input[type=file]", str(bad_file))
    page.get_by_role("button", name="Import").click()
    page.wait_for_load_state()

    errors = page.locator("[data-import-errors]")
    assert errors.get_by_text("Nothing was imported: 1 problem").is_visible()
    assert errors.locator('tr[data-row="4"]').get_by_text("quantity 'two'").is_visible()
    assert BundleMapping.objects.count() == 0
    screenshot("ops-bundle-import-bad-row")

    good_file = tmp_path / "bundles-fixed.csv"
    good_file.write_text(HEADER + GOOD + BAD_ROW.replace("two", "2"))
    page.set_input_files("input[type=file]", str(good_file))
    page.get_by_role("button", name="Import").click()
    page.wait_for_load_state()

    assert page.get_by_text("2 created, 0 updated, 0 unchanged").is_visible()
    assert page.get_by_role("link", name="KIT-1").is_visible()
    assert sorted(BundleMapping.objects.values_list("bundle_sku", flat=True)) == ["KIT-1", "KIT-2"]
    screenshot("ops-bundle-import-done")
