"""``budget_reserve_admit``: the whole reservation (lock the day then the month counter, check every
limit, add to both, hold the reservation) in one call, so that ``budget_reserve`` is one round trip
and the counters are locked only while the function runs (see ``tenants.budget.sql``)."""

from django.db import migrations

from tenants.budget.sql import RESERVE_FUNCTION_DROP, RESERVE_FUNCTION_SQL


class Migration(migrations.Migration):
    dependencies = [("budget", "0002_reservation_fewer_indexes")]

    operations = [migrations.RunSQL(RESERVE_FUNCTION_SQL, RESERVE_FUNCTION_DROP)]
