"""gunicorn settings for ReturnSync (``gunicorn -c deploy/gunicorn.conf.py returnsync.wsgi``).

Everything comes from the environment, so the same file serves every web host:

- ``WEB_BIND`` (default ``0.0.0.0:8000``), or ``PORT`` alone;
- ``WEB_WORKERS`` (default: 2 × cores + 1) sync worker processes, ``WEB_THREADS`` (default 1);
- ``WEB_TIMEOUT`` seconds a request may take (default 30; TikTok wants webhook answers in 3 s);
- ``FORWARDED_ALLOW_IPS``: the load balancer's addresses, whose X-Forwarded-* headers count.
"""
import multiprocessing
import os

bind = os.environ.get("WEB_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS") or multiprocessing.cpu_count() * 2 + 1)
threads = int(os.environ.get("WEB_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (bounded memory), staggered so they never restart together.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("WEB_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "returnsync-web"
