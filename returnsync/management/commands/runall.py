"""Run everything a local ReturnSync needs in one foreground command.

Starts the web server, the django-q2 worker and (when SANDBOX_ENABLED) the sandbox
traffic generator as child processes, streams their
output, and stops them all cleanly on Ctrl-C (SIGINT) or SIGTERM. If one of them
dies, the others are stopped too and the command exits non-zero, so a broken
start is never mistaken for a running dashboard.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

GRACE_SECONDS = 10


class Command(BaseCommand):
    help = "Start the web server and the background worker together (Ctrl-C stops both)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-worker", action="store_true", help="Web server only.")
        parser.add_argument("--no-traffic", action="store_true", help="No sandbox traffic generator.")

    def handle(self, *args, host: str, port: str, no_worker: bool, no_traffic: bool, **options) -> None:
        manage = [sys.executable, "manage.py"]
        commands = {"web": [*manage, "runserver", f"{host}:{port}", "--noreload"]}
        if not no_worker:
            commands["worker"] = [*manage, "qcluster"]
        if settings.SANDBOX_ENABLED and not no_traffic:
            # Sandbox traffic: new and advancing TikTok returns, delivered as signed webhooks.
            commands["sandbox"] = [
                *manage, "sandbox_traffic", "--interval", "4", "--server-url", f"http://{host}:{port}",
            ]

        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def request_stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

        # Children get their own process group so the terminal's Ctrl-C reaches only
        # us; we then stop them in order and wait for each.
        for name, command in commands.items():
            children[name] = subprocess.Popen(command, start_new_session=True)
            self.stdout.write(f"started {name} (pid {children[name].pid}): {' '.join(command[1:])}")
        self.stdout.write(self.style.SUCCESS(f"ReturnSync is up: http://{host}:{port}/  (Ctrl-C to stop)"))

        failed = None
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    failed = name
                    stopping = True
                    break
            time.sleep(0.3)

        if failed:
            self.stderr.write(f"{failed} exited with code {children[failed].returncode}; stopping the rest")
        self.stdout.write("stopping…")
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + GRACE_SECONDS
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in {GRACE_SECONDS}s; killing it")
                child.kill()
                child.wait()
        self.stdout.write("stopped")
        if failed:
            sys.exit(1)
