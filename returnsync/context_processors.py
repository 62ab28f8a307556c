from __future__ import annotations

from returnsync.roles import NAVIGATION, has_any_role, primary_role


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "primary_role": None}
    return {
        "nav_items": [item for item in NAVIGATION if has_any_role(user, item.roles)],
        "primary_role": primary_role(user),
    }
