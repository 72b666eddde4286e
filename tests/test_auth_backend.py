"""Model permissions in one query (mh1.auth_backends): the same answers as Django's ModelBackend,
a person's own grants and their role's (group's) together, in one statement a request."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from mh1.auth_backends import OneQueryModelBackend
from tenants.roles import Role

pytestmark = pytest.mark.django_db


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # no permission cache


def test_a_persons_own_and_their_roles_permissions_are_read_in_one_query(alpha, make_user):
    ae = make_user(alpha, Role.AE)
    with tenant_context(alpha):
        extra = Permission.objects.get(codename="view_lead")
        ae.user_permissions.add(extra)
        backend = OneQueryModelBackend()

        person = _fresh(ae)
        with CaptureQueriesContext(connection) as captured:
            permissions = backend.get_all_permissions(person)
        assert len(captured) == 1

        assert permissions == ModelBackend().get_all_permissions(_fresh(ae))
        assert "campaigns.view_lead" in permissions  # the person's own
        assert "approvals.approve_email_send" in permissions  # their role's
        assert backend.has_perm(_fresh(ae), "approvals.approve_email_send")
        assert not backend.has_perm(_fresh(ae), "tenants.add_tenant")


def test_inactive_people_and_object_checks_get_nothing_and_superusers_everything(alpha, make_user):
    viewer = make_user(alpha, Role.VIEWER)
    with tenant_context(alpha):
        backend = OneQueryModelBackend()
        viewer = _fresh(viewer)
        assert backend.get_all_permissions(viewer, obj=Group.objects.first()) == set()
        viewer.is_active = False
        assert backend.get_all_permissions(viewer) == set()

        root = User.objects.create(username="root@alpha.test", is_superuser=True, is_staff=True)
        assert len(backend.get_all_permissions(root)) == Permission.objects.count()
