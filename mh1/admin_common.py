"""Admin classes registered on both sites: users (roles only), groups, the read-only audit log."""

from __future__ import annotations

import copy

from auditlog.admin import LogEntryAdmin
from auditlog.filters import CIDFilter
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError

from mh1.addresses import email_normalize
from mh1.admin_search import Exact, VolumeAdminMixin, lookup_choices_filter
from mh1.admin_sites import public_site, tenant_site


class RoleUserChangeForm(UserChangeForm):
    def clean_is_active(self):
        from tenants.services import login_reactivation_check

        active = self.cleaned_data.get("is_active")
        if active and self.instance.pk and not self.instance.is_active:
            try:
                login_reactivation_check(username=self.instance.username)
            except ValidationError as exc:
                raise ValidationError(exc.message_dict["is_active"]) from exc
        return active


class RoleUserAdmin(UserAdmin):
    """Users get roles (groups) only: no superusers, no one-off permissions (fail closed). A login
    the platform revoked is not re-enabled here (only a new grant does that)."""

    form = RoleUserChangeForm

    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("is_active", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("last_login", "date_joined")
    list_display = ("username", "email", "first_name", "last_name", "is_active", "roles")
    list_filter = ("is_active", "groups")
    filter_horizontal = ("groups",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="roles")
    def roles(self, obj: User) -> str:
        return ", ".join(g.name for g in obj.groups.all()) or "—"

    def user_change_password(self, request, id, form_url=""):
        """Only for one's own login: setting someone else's password would let a tenant admin (or
        an operator) sign in as that person, an AE's approvals included. Others reset theirs."""
        if str(request.user.pk) != str(id):
            raise PermissionDenied(
                "You can change only your own password; others reset theirs from the login page."
            )
        return super().user_change_password(request, id, form_url)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None and obj.pk != request.user.pk and "password" in form.base_fields:
            field = copy.deepcopy(form.base_fields["password"])  # the declared field is shared
            field.help_text = (
                "Only this person can change their password (a tenant admin cannot set it for them)."
            )
            form.base_fields["password"] = field
        return form

    def save_model(self, request, obj, form, change):
        # Every console user works in the admin; nobody here bypasses the role map.
        obj.is_staff = True
        obj.is_superuser = False
        super().save_model(request, obj, form, change)


class ReadOnlyGroupAdmin(GroupAdmin):
    """Roles are defined in code (tenants/roles.py) and synced on migrate: read them here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _actors_with_email(term: str):
    # users are few, log entries many: the entry side is served by the actor_id index
    return User.objects.filter(email=email_normalize(term)).values("pk")


class AuditLogEntryAdmin(VolumeAdminMixin, LogEntryAdmin):
    """The audit trail: who changed what, from which address. Never editable."""

    list_select_related = ("actor", "content_type")
    list_per_page = 50
    date_hierarchy = None  # its year/month links are SELECT DISTINCT over every entry
    # auditlog's own resource-type filter reads its choices with SELECT DISTINCT over every entry
    list_filter = (
        "action",
        lookup_choices_filter(
            "content_type_id",
            lambda: ContentType.objects.order_by("app_label", "model").values_list("pk", "model"),
            title="resource type",
        ),
        CIDFilter,
        ("timestamp", admin.DateFieldListFilter),
    )
    exact_search_fields = (
        Exact("object_pk"),
        Exact("cid", label="correlation id"),
        Exact("actor_id__in", _actors_with_email, label="actor email"),
    )

    def has_delete_permission(self, request, obj=None):
        return False


for site in (public_site, tenant_site):
    site.register(User, RoleUserAdmin)
    site.register(Group, ReadOnlyGroupAdmin)
    site.register(LogEntry, AuditLogEntryAdmin)
