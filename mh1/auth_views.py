"""The sign-in edges of both hosts: password reset and set (Django's views, in the host's
branding) and the django-axes lockout page."""

from __future__ import annotations

import math

from django.contrib.admin import AdminSite
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone


def admin_site_for(request: HttpRequest) -> AdminSite:
    """The admin site of the host asked: the platform's on the public host, else the tenant's."""
    from mh1.admin_sites import public_site, tenant_site

    tenant = getattr(request, "tenant", None)
    return public_site if tenant is None or tenant.is_public else tenant_site


class _Branded:
    """Render in the admin site's context (header, tenant name), like the admin's own pages."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        return {**admin_site_for(self.request).each_context(self.request), **context}


class ConsolePasswordResetForm(PasswordResetForm):
    """Django's reset form, also for logins whose password was never set: in the console an
    unusable password means "granted, not yet set" (an expired set-password link is renewed
    here), not "signs in elsewhere". Inactive (revoked) logins still get nothing."""

    def get_users(self, email):
        wanted = email.casefold()
        return (
            u
            for u in User.objects.filter(email__iexact=email, is_active=True)
            if u.email.casefold() == wanted
        )


class PasswordResetView(_Branded, auth_views.PasswordResetView):
    form_class = ConsolePasswordResetForm


class PasswordResetDoneView(_Branded, auth_views.PasswordResetDoneView):
    pass


class PasswordResetConfirmView(_Branded, auth_views.PasswordResetConfirmView):
    pass


class PasswordResetCompleteView(_Branded, auth_views.PasswordResetCompleteView):
    pass


# Included first by both hosts' URLconfs. The names are Django's: the admin's login page links
# "Forgotten your login credentials?" when admin_password_reset exists.
urlpatterns = [
    path("admin/password_reset/", PasswordResetView.as_view(), name="admin_password_reset"),
    path("admin/password_reset/done/", PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the 429 page in the host's branding, saying when the lock ends and
    who can lift it sooner (Retry-After says the same to machines)."""
    from axes.conf import settings as axes_settings
    from axes.helpers import get_client_username, get_cool_off, get_failure_limit
    from axes.models import AccessAttempt

    username = get_client_username(request, credentials) or ""
    cool_off = get_cool_off(request)
    last = (
        AccessAttempt.objects.filter(username=username, ip_address=getattr(request, "axes_ip_address", None))
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    unlocks_at = (last or timezone.now()) + cool_off if cool_off else None
    site = admin_site_for(request)
    tenant = getattr(request, "tenant", None)
    context = {
        **site.each_context(request),
        "title": "Sign-in locked",
        "username": username,
        "failure_limit": get_failure_limit(request, credentials),
        "cooloff_minutes": math.ceil(cool_off.total_seconds() / 60) if cool_off else None,
        "unlocks_at": unlocks_at,
        "renewed_by_retry": axes_settings.AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT,
        "public_host": tenant is None or tenant.is_public,
    }
    status = axes_settings.AXES_HTTP_RESPONSE_CODE
    response = TemplateResponse(request, axes_settings.AXES_LOCKOUT_TEMPLATE, context, status=status)
    if unlocks_at is not None:
        response["Retry-After"] = str(max(1, math.ceil((unlocks_at - timezone.now()).total_seconds())))
    return response.render()
