"""Settings, read from the environment with safe local defaults.

Environment: DATABASE_URL, REDIS_URL, SECRET_KEY, FIELD_ENCRYPTION_KEY, ALLOWED_HOSTS,
CSRF_TRUSTED_ORIGINS, DEBUG, DJANGO_ENV (``production`` hardens everything), EMAIL_*,
RETURNSYNC_BASE_URL (where the dashboard is reached; links in e-mails).
A local run needs none of them: secrets for development are generated once into the
git-ignored ``var/`` folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
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

# Without SECRET_KEY a strong key is generated once into var/ (fine for one host;
# set SECRET_KEY to share it between hosts).
SECRET_KEY = os.environ.get("SECRET_KEY") or dev_secret(VAR_DIR, "secret_key", get_random_secret_key)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
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
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", not PRODUCTION)
if SANDBOX_ENABLED:
    INSTALLED_APPS += [
        "connectors.tiktok_shop.sandbox.apps.TikTokSandboxConfig",
        "connectors.zigzag.sandbox.apps.ZigZagSandboxConfig",
    ]

# --- Credentials at rest --------------------------------------------------------------
# Fernet key(s), comma-separated: the first encrypts, all decrypt (so keys can rotate).
FIELD_ENCRYPTION_KEY = os.environ.get("FIELD_ENCRYPTION_KEY") or dev_secret(
    VAR_DIR, "field_encryption_key", lambda: Fernet.generate_key().decode()
)

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
}
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
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
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
