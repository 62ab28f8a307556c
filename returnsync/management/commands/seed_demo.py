"""Create one demo user per role and print their credentials.

Passwords are generated once into ``var/`` and reused, so the printed credentials
stay valid across runs. Refuses to run in production unless ``--force``.
"""
from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from returnsync.devkeys import dev_secret
from returnsync.roles import Role, ensure_role_groups

DEMO_USERS: tuple[tuple[str, Role, str], ...] = (
    ("cx", Role.CX, "Casey (CX agent)"),
    ("finance", Role.FINANCE, "Frankie (Finance)"),
    ("ops", Role.OPERATIONS, "Oli (Operations)"),
    ("admin", Role.ADMIN, "Alex (Admin)"),
)


class Command(BaseCommand):
    help = "Create the demo users (one per role) and print their credentials."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Allow in production.")

    def handle(self, *args, force: bool, **options) -> None:
        if settings.PRODUCTION and not force:
            raise CommandError("seed_demo creates well-known accounts; refusing in production (use --force).")
        ensure_role_groups()
        User = get_user_model()
        rows = []
        for username, role, full_name in DEMO_USERS:
            password = dev_secret(settings.VAR_DIR, f"demo_password_{username}", lambda: secrets.token_urlsafe(9))
            first, _, last = full_name.partition(" ")
            user, _ = User.objects.get_or_create(username=username)
            user.first_name, user.last_name = first, last
            user.email = f"{username}@returnsync.local"
            user.is_staff = user.is_superuser = role == Role.ADMIN
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=role.value)])
            rows.append((role.label, username, password))

        self.stdout.write("\nDemo users (log in at /accounts/login/):")
        for label, username, password in rows:
            self.stdout.write(f"  {label:<12} username: {username:<8} password: {password}")
        self.stdout.write("")
