"""The two building blocks of every page: role-based access, and the declarative list."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import django_filters
import django_tables2
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.generic import TemplateView
from django_htmx.http import HttpResponseClientRedirect

from returnsync.roles import NAVIGATION, Role, has_any_role, user_roles


def nav_roles(url_name: str) -> frozenset[Role]:
    """The roles the NAVIGATION entry ``url_name`` is for (KeyError if there is none)."""
    for item in NAVIGATION:
        if item.url_name == url_name:
            return item.roles
    raise KeyError(f"{url_name!r} is not in returnsync.roles.NAVIGATION")


class RoleRequiredMixin:
    """Lets in only users holding one of ``roles`` (Admins always).

    ``nav_name`` names the NAVIGATION entry the page belongs to: ``roles`` is taken from
    it (unless a view sets its own), and the menu highlights it. Anonymous users are sent
    to the login page; logged-in users without the role get the 403 page.
    """

    nav_name: ClassVar[str | None] = None
    roles: ClassVar[frozenset[Role]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "roles" not in cls.__dict__ and cls.nav_name:
            cls.roles = nav_roles(cls.nav_name)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            login = redirect_to_login(request.get_full_path())
            if getattr(request, "htmx", False):
                # A partial swap must not put the login page inside a table.
                return HttpResponseClientRedirect(login.url)
            return login
        if not self.roles:
            raise ImproperlyConfigured(
                f"{type(self).__name__} names no roles (set nav_name or roles)"
            )
        if not has_any_role(user, self.roles):
            needed = (
                ", ".join(sorted(role.label for role in self.roles if role != Role.ADMIN))
                or Role.ADMIN.label
            )
            held = ", ".join(sorted(role.label for role in user_roles(user))) or "no role yet"
            raise PermissionDenied(f"This page is for: {needed}. Your account has: {held}.")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["active_nav"] = self.nav_name
        return context


# Spreadsheet apps run cells starting with these as formulas: data from outside (error
# messages, product names) must not be able to.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def stream_csv(rows: Iterable[Iterable[Any]], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        for row in rows:
            yield writer.writerow([csv_safe("" if cell is None else cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class FilteredTableView(RoleRequiredMixin, TemplateView):
    """A list page declared as data: a selector, a filterset, a table.

    - The full page and an htmx request render the same partial; htmx gets only the
      partial (unless htmx is restoring history, which needs the whole page).
    - ``?sort=`` orders by a column, ``?page=`` and ``?per_page=`` (capped) paginate.
    - ``?export=csv`` streams the same filtered, sorted rows with the visible columns.
    """

    template_name = "list.html"
    partial_template_name = "includes/list_partial.html"
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # Shown when there is nothing at all (no filter applied); the table's own
    # ``empty_text`` is shown when filters exclude everything.
    empty_message: ClassVar[str] = "Nothing here yet."
    selector: ClassVar[Callable[[], QuerySet]]
    filterset_class: ClassVar[type[django_filters.FilterSet]]
    table_class: ClassVar[type[django_tables2.Table]]
    per_page_default: ClassVar[int] = 50
    per_page_max: ClassVar[int] = 200
    per_page_choices: ClassVar[tuple[int, ...]] = (25, 50, 100, 200)

    def get_queryset(self) -> QuerySet:
        return type(self).selector()

    def get_filterset(self) -> django_filters.FilterSet:
        return self.filterset_class(
            data=self.request.GET, queryset=self.get_queryset(), request=self.request
        )

    def get_per_page(self) -> int:
        text = str(self.request.GET.get("per_page", self.per_page_default)).strip()
        try:
            per_page = int(text) if len(text) <= 9 else (self.per_page_max if text.isdigit() else 1)
        except ValueError:
            return self.per_page_default
        return max(1, min(per_page, self.per_page_max))

    def filters_active(self, filterset: django_filters.FilterSet) -> bool:
        return any(
            value.strip() for name in filterset.filters for value in self.request.GET.getlist(name)
        )

    def get_table(
        self, filterset: django_filters.FilterSet, *, paginate: bool
    ) -> django_tables2.Table:
        # django-tables2 paginates a table built with the request straight from ``?per_page=``:
        # the request carries the clamped size (0 or -1 would be an EmptyPage, a 500).
        if "per_page" in self.request.GET:
            query = self.request.GET.copy()
            query["per_page"] = str(self.get_per_page())
            self.request.GET = query
        table = self.table_class(filterset.qs, request=self.request)
        django_tables2.RequestConfig(self.request, paginate=False).configure(table)
        if paginate:
            try:
                table.paginate(page=self.request.GET.get("page", 1), per_page=self.get_per_page())
            except PageNotAnInteger:
                table.paginate(page=1, per_page=self.get_per_page())
            except EmptyPage:
                table.paginate(page=table.paginator.num_pages, per_page=self.get_per_page())
        return table

    def export_filename(self) -> str:
        name = (self.nav_name or "export").removesuffix("_list")
        return f"{name}-{timezone.localtime():%Y%m%d-%H%M}.csv"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        filterset = self.get_filterset()
        if request.GET.get("export") == "csv":
            table = self.get_table(filterset, paginate=False)
            return stream_csv(
                table.as_values(exclude_columns=table.export_exclude()), self.export_filename()
            )
        table = self.get_table(filterset, paginate=True)
        active = self.filters_active(filterset)
        if not active:
            table.empty_text = self.empty_message
        context = self.get_context_data(
            filter=filterset, table=table, filters_active=active, **kwargs
        )
        htmx = getattr(request, "htmx", None)
        template = (
            self.partial_template_name
            if htmx and not htmx.history_restore_request
            else self.template_name
        )
        response = self.response_class(
            request=request, template=[template], context=context, using=self.template_engine
        )
        patch_vary_headers(response, ("HX-Request",))
        return response

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            title=self.title,
            description=self.description,
            partial_template_name=self.partial_template_name,
            per_page=self.get_per_page(),
            per_page_choices=self.per_page_choices,
        )
        return context
