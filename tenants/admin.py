"""Public (platform operators') admin: tenants, domains, access grants, platform switches."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
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
from tenants.errors import TenantError
from tenants.models import Domain, PlatformSettings, Tenant, TenantAccessGrant
from tenants.roles import Role
from tenants.services import access_grant, access_revoke, tenant_create, tenant_set_active


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
        fields = ("name", "slug")

    def clean_slug(self):
        from tenants.services import tenant_slug_validate

        slug = self.cleaned_data["slug"].strip().lower()
        try:
            tenant_slug_validate(slug)
        except TenantError as exc:
            raise ValidationError(exc.message) from exc
        return slug

    def save(self, commit=True):
        # Provisioning happens in TenantAdmin.save_model through the service, never here.
        return super().save(commit=False)


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0
    fields = ("domain", "is_primary")


@admin.register(Tenant, site=public_site)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "schema_name", "primary_domain", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug", "schema_name", "domains__domain")
    ordering = ("name",)
    readonly_fields = ("schema_name", "created_at", "deactivated_at")
    actions = ("deactivate", "reactivate")
    inlines = (DomainInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).clients().prefetch_related("domains")

    def get_urls(self):
        from django.urls import path

        return [
            path("spend/", self.admin_site.admin_view(self.spend_view), name="tenants_tenant_spend"),
            *super().get_urls(),
        ]

    def spend_view(self, request):
        """Spend by tenant: each active tenant's day and month against its limits."""
        from django.core.exceptions import PermissionDenied
        from django.template.response import TemplateResponse

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
            return ("name", "slug", "admin_email", "admin_full_name", "admin_password")
        return ("name", "slug", "schema_name", "is_active", "created_at", "deactivated_at")

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
        )
        # The admin's response pages need the saved object.
        obj.pk = provisioned.tenant.pk
        obj.schema_name = provisioned.tenant.schema_name
        shown = f" Password (shown once): {provisioned.admin_password}" if provisioned.admin_password else ""
        self.message_user(
            request,
            f"Tenant {provisioned.tenant} is ready at http://{provisioned.domain.domain}/admin/ "
            f"({provisioned.seconds:.1f} s). First admin: {provisioned.admin_username}.{shown}",
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

    @admin.action(description="Deactivate selected tenants (host answers 404, jobs stop)")
    def deactivate(self, request, queryset):
        for tenant in queryset:
            tenant_set_active(acting_user=request.user, tenant=tenant, active=False)
        self.message_user(request, f"Deactivated {queryset.count()} tenant(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected tenants")
    def reactivate(self, request, queryset):
        for tenant in queryset:
            tenant_set_active(acting_user=request.user, tenant=tenant, active=True)
        self.message_user(request, f"Reactivated {queryset.count()} tenant(s).", messages.SUCCESS)


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
    role = forms.ChoiceField(choices=Role.tenant_choices())
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Sets the person's password in each selected tenant; empty keeps existing ones.",
    )


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
            from django.core.exceptions import PermissionDenied

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
            self.message_user(
                request,
                f"{data['email']} now has {Role(data['role']).label} access to "
                f"{', '.join(str(g.tenant) for g in grants)}.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect("../")
        from django.template.response import TemplateResponse

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
