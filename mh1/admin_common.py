"""Admin classes registered on both sites: users (roles only), groups, the read-only audit log."""

from __future__ import annotations

import copy

from auditlog.admin import LogEntryAdmin
from auditlog.filters import CIDFilter
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.contrib import admin, messages
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


class LoginLockoutAdmin(admin.ModelAdmin):
    """Failed sign-ins on this host (django-axes): who is locked out, and unlocking them sooner."""

    list_display = ("username", "ip_address", "failures_since_start", "attempt_time", "locked")
    search_fields = ("username", "ip_address")
    ordering = ("-attempt_time",)
    fields = ("username", "ip_address", "user_agent", "path_info", "failures_since_start", "attempt_time")
    readonly_fields = fields
    actions = ("unlock",)

    @admin.display(boolean=True, description="locked out")
    def locked(self, obj: AccessAttempt) -> bool:
        from django.conf import settings

        return obj.failures_since_start >= settings.AXES_FAILURE_LIMIT

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # only through "Unlock selected logins", which audits; never the bare delete page
        return obj is None and super().has_delete_permission(request)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Unlock selected logins", permissions=["delete"])
    def unlock(self, request, queryset):
        from tenants.services import login_unlock

        unlocked = login_unlock(
            acting_user=request.user, attempt_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(
            request,
            f"Unlocked {', '.join(sorted(set(unlocked))) or 'nothing'}: they can sign in again now.",
            messages.SUCCESS,
        )


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
    site.register(AccessAttempt, LoginLockoutAdmin)
