"""Production settings, as a deployed process starts them (a subprocess each): secrets
required with a clear message, no sandbox apps, no test hosts, ``check --deploy`` clean."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "SECRET_KEY": "x" * 60 + "production-test-key-0123456789",
    "FIELD_ENCRYPTION_KEY": "ZmRlZmRlZmRlZmRlZmRlZmRlZmRlZmRlZmRlZmRlZmQ=",
    "ALLOWED_HOSTS": "returnsync.example.com",
}


def run(args, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "ALLOWED_HOSTS", "SANDBOX_ENABLED", "DEBUG",
                         "DJANGO_ALLOW_ASYNC_UNSAFE")}  # the browser tests set it for their own process
    base.update(DJANGO_ENV="production", RETURNSYNC_VAR_DIR=str(ROOT / "var" / "prod-test"), **env)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEY", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_its_keys(missing):
    env = {k: v for k, v in KEYS.items() if k != missing}
    result = run(["manage.py", "check"], **env)
    assert result.returncode != 0
    assert f"DJANGO_ENV=production needs {missing}" in result.stderr
    assert not (ROOT / "var" / "prod-test" / "secret_key").exists()  # nothing generated per host


def test_production_has_no_sandbox_apps_no_test_hosts_and_passes_check_deploy():
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print([a for a in s.INSTALLED_APPS if 'sandbox' in a], s.ALLOWED_HOSTS, s.DEBUG, "
            "s.STORAGES['staticfiles']['BACKEND'].rsplit('.', 1)[1])")
    result = run(["-c", code], DJANGO_SETTINGS_MODULE="returnsync.settings", **KEYS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == \
        "[] ['returnsync.example.com'] False CompressedManifestStaticFilesStorage"
    deploy = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **KEYS)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert "no issues" in deploy.stdout


def test_test_host_in_production_is_refused():
    result = run(["manage.py", "check"], **{**KEYS, "ALLOWED_HOSTS": "returnsync.example.com,testserver"})
    assert result.returncode != 0 and "testserver" in result.stderr
