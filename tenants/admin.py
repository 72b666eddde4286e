"""Public (platform operators') admin: tenants, domains, access grants, platform switches."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from solo.admin import SingletonModelAdmin

from mh1 import admin_common  # noqa: F401  (users, groups, audit on both sites)
from mh1.admin_sites import public_site
from mh1.links import host_url
from tenants.errors import TenantError
from tenants.models import Domain, PlatformSettings, Tenant, TenantAccessGrant
from tenants.roles import Role
from tenants.services import (
    access_grant,
    access_revoke,
    access_set_password_links_send,
    tenant_create,
    tenant_set_active,
)


class TenantCreationForm(forms.ModelForm):
    admin_email = forms.EmailField(help_text="The tenant's first admin; logs in with this address.")
    admin_full_name = forms.CharField(required=False, max_length=200)
    admin_password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Leave empty to generate one; it is shown once after saving.",
    )

    class Meta:
        model = Tenant
        fields = ("name", "slug", "time_zone")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].required = False  # left empty: UTC

    def clean_time_zone(self):
        return self.cleaned_data.get("time_zone") or "UTC"

    def clean_slug(self):
        from tenants.services import tenant_slug_validate

        slug = self.cleaned_data["slug"].strip().lower()
        try:
            tenant_slug_validate(slug)
        except TenantError as exc:
            raise ValidationError(exc.message) from exc
        return slug

    def clean(self):
        data = super().clean()
        password = data.get("admin_password")
        if password and data.get("admin_email"):
            _password_errors_to(
                self, "admin_password", password, data["admin_email"], data.get("admin_full_name", "")
            )
        return data

    def save(self, commit=True):
        # Provisioning happens in TenantAdmin.save_model through the service, never here.
        return super().save(commit=False)


def _password_errors_to(form: forms.Form, field: str, password: str, email: str, full_name: str) -> None:
    """Django's password validators, their reasons shown on the password field."""
    from tenants.services import login_password_validate

    try:
        login_password_validate(password=password, email=email, full_name=full_name)
    except ValidationError as exc:
        form.add_error(field, exc.messages)


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0
    fields = ("domain", "is_primary")


@admin.register(Tenant, site=public_site)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "schema_name", "primary_domain", "time_zone", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug", "schema_name", "domains__domain")
    ordering = ("name",)
    readonly_fields = ("schema_name", "created_at", "deactivated_at")
    actions = ("deactivate", "reactivate")
    inlines = (DomainInline,)
    change_form_template = "admin/tenants/tenant/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).clients().prefetch_related("domains")

    def get_urls(self):
        from django.urls import path

        view = self.admin_site.admin_view
        return [
            path("spend/", view(self.spend_view), name="tenants_tenant_spend"),
            path("<int:object_id>/deactivate/", view(self.deactivate_view), name="tenants_tenant_deactivate"),
            path("<int:object_id>/reactivate/", view(self.reactivate_view), name="tenants_tenant_reactivate"),
            *super().get_urls(),
        ]

    def spend_view(self, request):
        """Spend by tenant: each active tenant's day and month against its limits."""
        from tenants.budget.selectors import spend_by_tenant

        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Spend by tenant",
            "tenants": spend_by_tenant(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/tenants/tenant/spend.html", context)

    @admin.display(description="host")
    def primary_domain(self, obj: Tenant) -> str:
        primary = [d.domain for d in obj.domains.all() if d.is_primary]
        return primary[0] if primary else "—"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TenantCreationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "slug", "time_zone", "admin_email", "admin_full_name", "admin_password")
        return ("name", "slug", "time_zone", "schema_name", "is_active", "created_at", "deactivated_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("slug", "schema_name", "is_active", "created_at", "deactivated_at")

    def get_inlines(self, request, obj):
        return self.inlines if obj else ()

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        provisioned = tenant_create(
            acting_user=request.user,
            name=form.cleaned_data["name"],
            slug=form.cleaned_data["slug"],
            admin_email=form.cleaned_data["admin_email"],
            admin_full_name=form.cleaned_data.get("admin_full_name", ""),
            admin_password=form.cleaned_data.get("admin_password") or None,
            time_zone=str(form.cleaned_data.get("time_zone") or "UTC"),
        )
        # The admin's response pages need the saved object.
        obj.pk = provisioned.tenant.pk
        obj.schema_name = provisioned.tenant.schema_name
        shown = f" Password (shown once): {provisioned.admin_password}" if provisioned.admin_password else ""
        admin_url = host_url(provisioned.domain.domain, "/admin/", request=request)
        self.message_user(
            request,
            format_html(
                'Tenant {} is ready at <a href="{}">{}</a> ({} s). First admin: {}.{}',
                provisioned.tenant,
                admin_url,
                admin_url,
                f"{provisioned.seconds:.1f}",
                provisioned.admin_username,
                shown,
            ),
            messages.SUCCESS,
        )

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except TenantError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def has_delete_permission(self, request, obj=None):
        # Tenants are deactivated, never deleted from the console: their data stays recoverable.
        return False

    @admin.action(
        description="Deactivate selected tenants (asks first; host answers 404, jobs stop)",
        permissions=["change"],
    )
    def deactivate(self, request, queryset):
        tenants = list(queryset.clients())
        if request.POST.get("post") != "yes":
            return self._deactivate_confirmation(request, tenants, from_action=True)
        self._deactivate(request, tenants)
        return None

    @admin.action(description="Reactivate selected tenants", permissions=["change"])
    def reactivate(self, request, queryset):
        for tenant in queryset.clients():
            tenant_set_active(acting_user=request.user, tenant=tenant, active=True)
        self.message_user(request, f"Reactivated {queryset.count()} tenant(s).", messages.SUCCESS)

    def deactivate_view(self, request, object_id: int):
        """The change page's Deactivate button: the confirmation page, then (POST post=yes) the act."""
        tenant = self._tenant_or_404(request, object_id)
        if request.method == "POST" and request.POST.get("post") == "yes":
            self._deactivate(request, [tenant])
            return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
        return self._deactivate_confirmation(request, [tenant], from_action=False)

    def reactivate_view(self, request, object_id: int):
        """The change page's Reactivate button: nothing is taken away, so no confirmation."""
        tenant = self._tenant_or_404(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        tenant_set_active(acting_user=request.user, tenant=tenant, active=True)
        self.message_user(request, f"Reactivated {tenant}: its host answers again.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[tenant.pk]))

    def _tenant_or_404(self, request, object_id: int) -> Tenant:
        tenant = self.get_queryset(request).filter(pk=object_id).first()
        if tenant is None:
            raise Http404("No such tenant.")
        if not self.has_change_permission(request, tenant):
            raise PermissionDenied
        return tenant

    def _deactivate(self, request, tenants: list[Tenant]) -> None:
        done = [tenant_set_active(acting_user=request.user, tenant=t, active=False) for t in tenants]
        self.message_user(
            request,
            f"Deactivated {len(done)} tenant(s): {', '.join(str(t) for t in done) or 'none'}. "
            "Their hosts answer 404 and their jobs stop; reactivate them any time.",
            messages.SUCCESS,
        )

    def _deactivate_confirmation(self, request, tenants: list[Tenant], *, from_action: bool):
        """Like Django's delete confirmation: what deactivating takes away, before it is done."""
        from tenants.selectors import tenant_deactivation_impact

        impacts = tenant_deactivation_impact([t for t in tenants if t.is_active])
        context = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?",
            "subtitle": "Deactivate tenants",
            "opts": self.model._meta,
            "impacts": impacts,
            "already_inactive": [t for t in tenants if not t.is_active],
            "blocked_logins": sum(i.active_logins for i in impacts),
            "from_action": from_action,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/tenants/tenant/deactivate_confirmation.html", context)


@admin.register(Domain, site=public_site)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("domain", "tenant", "is_primary")
    list_select_related = ("tenant",)
    search_fields = ("domain", "tenant__name")
    autocomplete_fields = ("tenant",)


class AccessGrantForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(required=False, max_length=200)
    tenants = forms.ModelMultipleChoiceField(queryset=Tenant.objects.active())
    # least privilege unless the operator picks more
    role = forms.ChoiceField(
        choices=Role.tenant_choices(),
        initial=Role.VIEWER.value,
        help_text="Viewer reads only; pick more only if the person needs it.",
    )
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Sets the person's password in each selected tenant; empty keeps existing ones. "
        "Where the person has no password yet, they get an email with a link to set one.",
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("email"):
            _password_errors_to(self, "password", data["password"], data["email"], data.get("full_name", ""))
        return data


@admin.register(TenantAccessGrant, site=public_site)
class TenantAccessGrantAdmin(admin.ModelAdmin):
    list_display = ("email", "full_name", "tenant", "role", "is_active", "granted_by", "granted_at")
    list_filter = ("role", "is_active", "tenant")
    list_select_related = ("tenant", "granted_by")
    search_fields = ("email", "full_name", "tenant__name")
    readonly_fields = ("email", "tenant", "granted_by", "granted_at", "revoked_at", "is_active")
    fields = ("email", "full_name", "tenant", "role", "is_active", "granted_by", "granted_at", "revoked_at")
    actions = ("revoke",)

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        """One form gives a person access to several tenants at once."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = AccessGrantForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            grants = access_grant(
                acting_user=request.user,
                email=data["email"],
                full_name=data["full_name"],
                tenants=list(data["tenants"]),
                role=Role(data["role"]),
                password=data["password"] or None,
            )
            email = grants[0].email if grants else data["email"]
            self.message_user(
                request,
                # (not opening with the address: the admin capitalises a message's first letter)
                f"Access granted: {email} now has {Role(data['role']).label} access to "
                f"{', '.join(str(g.tenant) for g in grants)}.",
                messages.SUCCESS,
            )
            links = access_set_password_links_send(
                acting_user=request.user,
                email=email,
                tenants=[g.tenant for g in grants],
                request=request,
            )
            sent = [str(link.tenant) for link in links if link.sent]
            if sent:
                self.message_user(
                    request,
                    f"They have no password yet: a link to set one was emailed to {email} "
                    f"for {', '.join(sent)}.",
                    messages.SUCCESS,
                )
            for link in links:
                if not link.sent:
                    self.message_user(
                        request,
                        f"The set-password email for {link.tenant} could not be sent ({link.error}). "
                        "They cannot sign in there until they set a password: ask them to use "
                        "“Forgotten your login credentials?” on its login page, or grant again later.",
                        messages.WARNING,
                    )
            return HttpResponseRedirect("../")
        context = {
            **self.admin_site.each_context(request),
            "title": "Grant tenant access",
            "form": form,
            "opts": self.model._meta,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/tenants/grant_access.html", context)

    def save_model(self, request, obj, form, change):
        # Changing the role of an existing grant re-grants it, so the tenant's login follows.
        access_grant(
            acting_user=request.user,
            email=obj.email,
            full_name=obj.full_name,
            tenants=[obj.tenant],
            role=Role(obj.role),
        )

    @admin.action(description="Revoke selected access (logins deactivated at once)")
    def revoke(self, request, queryset):
        count = 0
        for grant in queryset.select_related("tenant").filter(is_active=True):
            access_revoke(acting_user=request.user, grant=grant)
            count += 1
        self.message_user(request, f"Revoked {count} grant(s).", messages.SUCCESS)


class PlatformSettingsForm(forms.ModelForm):
    class Meta:
        model = PlatformSettings
        fields = ("global_kill_switch", "kill_switch_reason")

    def clean(self):
        data = super().clean()
        if data.get("global_kill_switch") and not (data.get("kill_switch_reason") or "").strip():
            self.add_error("kill_switch_reason", "Say why the kill switch is on.")
        return data


@admin.register(PlatformSettings, site=public_site)
class PlatformSettingsAdmin(SingletonModelAdmin):
    form = PlatformSettingsForm
    fields = ("global_kill_switch", "kill_switch_reason", "updated_at")
    readonly_fields = ("updated_at",)

    def save_model(self, request, obj, form, change):
        from tenants.services import global_kill_switch_set

        global_kill_switch_set(
            acting_user=request.user, on=obj.global_kill_switch, reason=obj.kill_switch_reason
        )


# Celery beat's schedules, editable by platform operators on the public host only.
public_site.register(PeriodicTask, beat_admin.PeriodicTaskAdmin)
public_site.register(IntervalSchedule, beat_admin.IntervalScheduleAdmin)
public_site.register(CrontabSchedule, beat_admin.CrontabScheduleAdmin)
public_site.register(SolarSchedule, beat_admin.SolarScheduleAdmin)
public_site.register(ClockedSchedule, beat_admin.ClockedScheduleAdmin)
