"""Settings, read from the environment with safe local defaults.

Environment: DATABASE_URL, REDIS_URL, SECRET_KEY, FIELD_ENCRYPTION_KEY, ALLOWED_HOSTS,
CSRF_TRUSTED_ORIGINS, DEBUG, DJANGO_ENV (``production`` hardens everything), EMAIL_*,
RETURNSYNC_BASE_URL (where the dashboard is reached; links in e-mails).
A local run needs none of them: secrets for development are generated once into the
git-ignored ``var/`` folder.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from returnsync.devkeys import dev_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RETURNSYNC_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "")
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


PRODUCTION = os.environ.get("DJANGO_ENV", "development").lower() == "production"
DEBUG = env_bool("DEBUG", not PRODUCTION)

# Production takes its secrets from the environment, the same on every host: a key
# generated per host would make credentials saved on one host unreadable on another.
if PRODUCTION:
    _missing = [name for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "ALLOWED_HOSTS") if not os.environ.get(name)]
    if _missing:
        raise ImproperlyConfigured(
            f"DJANGO_ENV=production needs {', '.join(_missing)} set in the environment (the same values on "
            "every web and worker host). Generate keys with: python -c 'import secrets; print(secrets.token_urlsafe(50))' "
            "for SECRET_KEY and python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' "
            "for FIELD_ENCRYPTION_KEY; ALLOWED_HOSTS is the comma-separated host names people use. "
            "See README, 'Running in production'."
        )

# Outside production a strong key is generated once into var/ (one host, no setup).
SECRET_KEY = os.environ.get("SECRET_KEY") or dev_secret(VAR_DIR, "secret_key", get_random_secret_key)

# Test hosts only outside production: production lists its own names and nothing else.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"])
if PRODUCTION and "testserver" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS lists the test host 'testserver' in production: remove it.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The dashboard's address as people reach it: digest e-mails link to exceptions with it.
RETURNSYNC_BASE_URL = os.environ.get("RETURNSYNC_BASE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tables2",
    "django_filters",
    "django_q",
    "simple_history",
    "axes",
    "csp",
    "returnsync.apps.ReturnSyncConfig",
    "exceptions_app.apps.ExceptionsConfig",
    "connectors.apps.ConnectorsConfig",
    # One line per external system (see connectors/README.md): its app registers its Connector.
    "connectors.tiktok_shop.apps.TikTokShopConfig",
    "connectors.zigzag.apps.ZigZagConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",  # deny by default
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Who made a change, for the change history (services name the actor themselves too).
    "simple_history.middleware.HistoryRequestMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: answers a locked-out login with the lockout page
]

ROOT_URLCONF = "returnsync.urls"
WSGI_APPLICATION = "returnsync.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "returnsync.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# SQLite is the embedded default (WAL mode and a busy timeout on every connection);
# PostgreSQL in production and in CI's second run.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'returnsync.sqlite3'}",
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA busy_timeout=20000;"
            "PRAGMA synchronous=NORMAL;"
        ),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one
# username, or from one address, further attempts are refused for AXES_COOLOFF_TIME with a
# page saying so (HTTP 429). An admin unlocks early in Django admin (Axes › Access attempts:
# delete the rows) or with ``manage.py axes_reset_username <name>`` / ``axes_reset_ip <ip>``.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: per user, and per address
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_SENSITIVE_PARAMETERS = ["password"]
# Behind a load balancer the client address is the last hop it appended: set
# LOGIN_PROXY_COUNT to the number of proxies in front of gunicorn (0: REMOTE_ADDR).
AXES_IPWARE_PROXY_COUNT = int(os.environ.get("LOGIN_PROXY_COUNT", "0")) or None
if AXES_IPWARE_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (whitenoise) --------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Outside production, whitenoise serves straight from the finders (no collectstatic needed).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Sandboxes ------------------------------------------------------------------------
# The fake external systems are served under /sandbox/ by this same project (never in
# production unless asked for), so the demo and the tests run the real connector code.
# Their apps (and tables) are installed only when the sandbox is on.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", not PRODUCTION)  # production: only when asked (SANDBOX_ENABLED=1)
if SANDBOX_ENABLED:
    INSTALLED_APPS += [
        "connectors.tiktok_shop.sandbox.apps.TikTokSandboxConfig",
        "connectors.zigzag.sandbox.apps.ZigZagSandboxConfig",
    ]

# --- Credentials at rest --------------------------------------------------------------
# Fernet key(s), comma-separated: the first encrypts, all decrypt (so keys can rotate).
FIELD_ENCRYPTION_KEY = os.environ.get("FIELD_ENCRYPTION_KEY") or dev_secret(
    VAR_DIR, "field_encryption_key", lambda: Fernet.generate_key().decode()
)  # production: from the environment, checked above

# --- Background jobs (django-q2) ------------------------------------------------------
# ORM broker by default, Redis when REDIS_URL is set. A job is killed after `timeout`
# and only re-delivered after `retry`, so one job never runs twice at once.
REDIS_URL = os.environ.get("REDIS_URL", "")
Q_CLUSTER = {
    "name": "returnsync",
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    "timeout": 60,
    "retry": 90,
    "max_attempts": 5,
    "queue_limit": 50,
    "bulk": 10,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
    "label": "Background jobs",
    # One schedule owner: with several clusters, set Q_SCHEDULER=0 on all but one.
    "scheduler": env_bool("Q_SCHEDULER", True),
}
# A task a killed worker had taken is lost with it (the Redis broker has no acknowledgement):
# the sweeps find what it left behind. A stored webhook not processed after this long is
# queued again; a write-back or stock update left "running" is claimable again after the
# lease (always longer than the job timeout above).
INBOUND_REQUEUE_AFTER_SECONDS = int(os.environ.get("INBOUND_REQUEUE_AFTER_SECONDS", "300"))
JOB_LEASE_SECONDS = int(os.environ.get("JOB_LEASE_SECONDS", "600"))
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Email ----------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "returnsync@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Tables ---------------------------------------------------------------------------
DJANGO_TABLES2_TEMPLATE = "tables/table.html"

# --- Hardening ------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content Security Policy (django-csp): scripts, styles, images and requests only from this
# site; no inline script, style attribute or eval anywhere (htmx is configured for that in
# base.html, the page scripts live in static/js/app.js). Violations can be reported to
# CSP_REPORT_URI.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}
if os.environ.get("CSP_REPORT_URI"):
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [os.environ["CSP_REPORT_URI"]]

# /healthz: how old the workers' heartbeat and how late a schedule may be before it fails.
HEALTH_WORKER_MAX_AGE_SECONDS = int(os.environ.get("HEALTH_WORKER_MAX_AGE_SECONDS", "180"))
HEALTH_SCHEDULE_MAX_LAG_SECONDS = int(os.environ.get("HEALTH_SCHEDULE_MAX_LAG_SECONDS", "300"))

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
