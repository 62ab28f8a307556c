"""``GET /healthz``: 200 when the deployment can work, 503 naming what cannot (no login)."""
from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from returnsync.health import health_report


@never_cache
@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = health_report()
    response = JsonResponse(report, status=200 if report["status"] == "ok" else 503)
    if report["failing"]:
        response["X-Health-Failing"] = ",".join(report["failing"])
    return response
