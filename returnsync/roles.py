"""The four roles, what each may see, and the groups that carry them.

Access is decided here and nowhere else: a view names the roles it serves
(``RoleRequiredMixin.roles``); navigation is built from the same table. Admins
(and superusers) see everything.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db import models


class Role(models.TextChoices):
    CX = "CX", "CX agent"
    OPERATIONS = "Operations", "Operations"
    FINANCE = "Finance", "Finance"
    ADMIN = "Admin", "Admin"


# Model permissions each role's group gets (used by Django admin and as a record of intent).
_VIEW = "view"
GROUP_PERMISSIONS: dict[Role, dict[str, tuple[str, ...]]] = {
    Role.CX: {
        "order": (_VIEW,), "orderline": (_VIEW,), "marketplacereturn": (_VIEW,), "marketplacereturnline": (_VIEW,),
        "portalreturn": (_VIEW,), "portalreturnline": (_VIEW,), "returnevent": (_VIEW,), "refund": (_VIEW,),
    },
    Role.FINANCE: {
        "order": (_VIEW,), "marketplacereturn": (_VIEW,), "portalreturn": (_VIEW,), "refund": (_VIEW,),
        "returnevent": (_VIEW,), "bundlemapping": (_VIEW,), "bundlecomponent": (_VIEW,),
    },
    Role.OPERATIONS: {
        "order": (_VIEW,), "marketplacereturn": (_VIEW,), "portalreturn": (_VIEW,), "portalreturnline": (_VIEW,),
        "returnevent": (_VIEW,), "writeback": (_VIEW,),
        "bundlemapping": ("view", "add", "change", "delete"),
        "bundlecomponent": ("view", "add", "change", "delete"),
        "warehousemapping": ("view", "add", "change", "delete"),
        "inventoryadjustment": (_VIEW,),
    },
    Role.ADMIN: {},  # every permission of this project's apps: see ensure_role_groups
}


@dataclass(frozen=True)
class NavItem:
    url_name: str
    label: str
    roles: frozenset[Role]


def roles_with_admin(*roles: Role) -> frozenset[Role]:
    return frozenset(roles) | {Role.ADMIN}


_roles = roles_with_admin
ALL_ROLES = _roles(Role.CX, Role.FINANCE, Role.OPERATIONS)

_CORE_NAVIGATION: tuple[NavItem, ...] = (
    NavItem("home", "Home", ALL_ROLES),
    NavItem("exception_list", "Exceptions", ALL_ROLES),
    NavItem("return_list", "Returns", ALL_ROLES),
    NavItem("refund_list", "Refunds", _roles(Role.FINANCE, Role.CX)),
    NavItem("finance", "Finance", _roles(Role.FINANCE)),
    NavItem("runbook", "Runbook", ALL_ROLES),
    NavItem("service_levels", "Service levels", ALL_ROLES),
    NavItem("bundle_list", "Bundles", _roles(Role.OPERATIONS, Role.FINANCE)),
    NavItem("warehouse_list", "Warehouses", _roles(Role.OPERATIONS)),
    NavItem("inventory_list", "Restock", _roles(Role.OPERATIONS)),
    NavItem("writeback_list", "Write-backs", _roles(Role.OPERATIONS)),
    NavItem("connection_list", "Connections", _roles()),
    NavItem("sync_health", "Sync health", _roles()),
    NavItem("inbound_list", "Inbound events", _roles()),
    NavItem("apicall_list", "API calls", _roles()),
    NavItem("exception_settings", "Exception settings", _roles()),
)


# Pages the installed apps add (``returnsync.registry.nav_register``) come after the core's
# daily pages, before the admin's.
_ADMIN_SECTION_STARTS_AT = "connection_list"


class _Navigation(Sequence):
    """The menu: the core's pages with those the installed apps registered, in one order."""

    def _items(self) -> tuple[NavItem, ...]:
        from returnsync import registry

        cut = next(i for i, item in enumerate(_CORE_NAVIGATION) if item.url_name == _ADMIN_SECTION_STARTS_AT)
        return (*_CORE_NAVIGATION[:cut], *registry.nav_items(), *_CORE_NAVIGATION[cut:])

    def __getitem__(self, index):
        return self._items()[index]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[NavItem]:
        return iter(self._items())


NAVIGATION: Sequence[NavItem] = _Navigation()


def user_roles(user) -> frozenset[Role]:
    """The roles a user holds (cached on the user object for the request)."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_returnsync_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(role for role in Role if role.value in names)
        if user.is_superuser:
            cached = cached | {Role.ADMIN}
        user._returnsync_roles = cached
    return cached


def has_any_role(user, roles: frozenset[Role]) -> bool:
    held = user_roles(user)
    return Role.ADMIN in held or bool(held & roles)


def primary_role(user) -> Role | None:
    held = user_roles(user)
    for role in (Role.ADMIN, Role.FINANCE, Role.OPERATIONS, Role.CX):
        if role in held:
            return role
    return None


def ensure_role_groups() -> None:
    """Create the role groups and (re)assign their permissions. Safe to run any time."""
    project_perms = Permission.objects.filter(content_type__app_label__in=["returnsync", "exceptions_app"])
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        if role == Role.ADMIN:
            group.permissions.set(project_perms)
            continue
        wanted = [
            f"{action}_{model}" for model, actions in GROUP_PERMISSIONS[role].items() for action in actions
        ]
        group.permissions.set(project_perms.filter(codename__in=wanted))
