"""The reserving function, installed in every tenant schema by migration ``budget.0003``.

A migration imports this text: change it only together with a new migration that re-creates the
function (``CREATE OR REPLACE`` with the new body).

``budget_reserve_admit(...)`` reads the tenant's limits (``QuotaPolicy``) and the model's price in
force, prices the worst case and answers one row: ``outcome``, the refusal's ``limit_name`` and
figures (``spent``, ``reserved``, ``asked``, ``allowed``), the run's ``usd``, spent + reserved after
an admission (``day_used``, ``month_used``, ``month_tokens``, for the alerts) and the limits read.
``outcome`` is:

- ``no_policy``: the tenant has no QuotaPolicy row yet (the caller creates it and asks again);
- ``unpriced``: no price is in force for the model;
- ``admitted``: the day and month counters were increased and the reservation row inserted;
  ``day_used`` / ``month_used`` / ``month_tokens`` are spent + reserved after it (for the alerts);
- ``duplicate``: a reservation with this key exists already; nothing was changed;
- ``refused``: ``limit_name`` would be exceeded (``per_run_usd`` before any lock), with the
  figures read under the lock; nothing was changed.

Lock order, as everywhere in the ledger: the reservation row (inserted first: a repeated key stops
there), then the day counter, then the month counter (a missing counter row is created first,
then locked). Each statement of a PL/pgSQL function reads the latest committed data (READ
COMMITTED), so a check made under the lock sees every reservation committed before it. Each
counter's checks are its UPDATE's condition (one statement per counter for an admitted run); a
refusal by the month gives the day back what it took and deletes the reservation row, so nothing
of a refused run remains (no savepoint).
"""

RESERVE_FUNCTION_SQL = r"""
CREATE OR REPLACE FUNCTION budget_reserve_admit(
    p_key text, p_skill text, p_model text, p_names text[], p_input_tokens bigint,
    p_output_tokens bigint, p_day date, p_month date, p_now timestamptz, p_expires timestamptz,
    p_policy_id integer,
    OUT outcome text, OUT limit_name text, OUT spent numeric, OUT reserved numeric,
    OUT asked numeric, OUT allowed numeric, OUT usd numeric,
    OUT day_used numeric, OUT month_used numeric, OUT month_tokens numeric,
    OUT daily_usd numeric, OUT monthly_usd numeric, OUT monthly_tokens bigint, OUT daily_runs bigint,
    OUT per_run_usd numeric, OUT thresholds integer[])
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    q record;
    price record;
    tokens bigint := p_input_tokens + p_output_tokens;
    d budget_budgetcounter%ROWTYPE;
    m budget_budgetcounter%ROWTYPE;
    held bigint;
BEGIN
    -- the limits (a person edits them rarely: the row as committed now is the one in force)
    SELECT daily_usd_limit, monthly_usd_limit, monthly_token_budget, daily_run_limit, per_run_usd_limit,
           alert_thresholds
      INTO q FROM policy_quotapolicy WHERE id = p_policy_id;
    IF NOT FOUND THEN
        outcome := 'no_policy';
        RETURN;
    END IF;
    daily_usd := q.daily_usd_limit; monthly_usd := q.monthly_usd_limit;
    monthly_tokens := q.monthly_token_budget; daily_runs := q.daily_run_limit;
    per_run_usd := q.per_run_usd_limit; thresholds := q.alert_thresholds;

    -- the worst case at the price in force now (tenants.budget.prices.PRICE_SQL and usd_of)
    SELECT input_usd_per_mtok, output_usd_per_mtok INTO price
      FROM public.tenants_modelprice
     WHERE model = ANY(p_names) AND effective_from <= p_now
     ORDER BY array_position(p_names, model::text), effective_from DESC
     LIMIT 1;
    IF NOT FOUND THEN
        outcome := 'unpriced';
        RETURN;
    END IF;
    usd := round((p_input_tokens * price.input_usd_per_mtok
                  + p_output_tokens * price.output_usd_per_mtok) * 0.000001, 6);
    IF usd > per_run_usd THEN
        outcome := 'refused';
        limit_name := 'per_run_usd'; spent := 0; reserved := 0; asked := usd; allowed := per_run_usd;
        RETURN;
    END IF;

    -- the reservation row first (the ledger's lock order): its unique key answers a repeat, and
    -- the insert is done before the counters are locked, so they stay locked for less
    INSERT INTO budget_budgetreservation (key, skill, model, reserved_usd, reserved_tokens, spent_usd,
                                          spent_tokens, status, created_at, expires_at)
    VALUES (p_key, p_skill, p_model, usd, tokens, 0, 0, 'open', p_now, p_expires)
    ON CONFLICT (key) DO NOTHING
    RETURNING id INTO held;
    IF held IS NULL THEN
        outcome := 'duplicate';
        RETURN;
    END IF;

    -- the day counter: the checks are the UPDATE's condition, so an admitted run costs one
    -- statement per counter; only a refusal (or a period's first run) reads the row
    LOOP
        UPDATE budget_budgetcounter
           SET usd_reserved = usd_reserved + usd, tokens_reserved = tokens_reserved + tokens,
               runs = runs + 1
         WHERE kind = 'day' AND period_start = p_day
           AND runs + 1 <= daily_runs AND usd_spent + usd_reserved + usd <= daily_usd
        RETURNING usd_spent + usd_reserved INTO day_used;
        EXIT WHEN FOUND;
        SELECT * INTO d FROM budget_budgetcounter
         WHERE kind = 'day' AND period_start = p_day FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO budget_budgetcounter (kind, period_start, usd_spent, usd_reserved,
                                              tokens_spent, tokens_reserved, runs)
            VALUES ('day', p_day, 0, 0, 0, 0, 0) ON CONFLICT (kind, period_start) DO NOTHING;
            CONTINUE;
        END IF;
        outcome := 'refused';
        IF d.runs + 1 > daily_runs THEN
            limit_name := 'daily_runs'; spent := d.runs; reserved := 0; asked := 1; allowed := daily_runs;
        ELSIF d.usd_spent + d.usd_reserved + usd > daily_usd THEN
            limit_name := 'daily_usd'; spent := d.usd_spent; reserved := d.usd_reserved;
            asked := usd; allowed := daily_usd;
        ELSE
            CONTINUE;  -- a hold was released in between: ask again
        END IF;
        DELETE FROM budget_budgetreservation WHERE id = held;
        RETURN;
    END LOOP;

    -- the month counter, the same way; a refusal here gives the day back what it took
    LOOP
        UPDATE budget_budgetcounter
           SET usd_reserved = usd_reserved + usd, tokens_reserved = tokens_reserved + tokens,
               runs = runs + 1
         WHERE kind = 'month' AND period_start = p_month
           AND usd_spent + usd_reserved + usd <= monthly_usd
           AND tokens_spent + tokens_reserved + tokens <= monthly_tokens
        RETURNING usd_spent + usd_reserved, tokens_spent + tokens_reserved INTO month_used, month_tokens;
        EXIT WHEN FOUND;
        SELECT * INTO m FROM budget_budgetcounter
         WHERE kind = 'month' AND period_start = p_month FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO budget_budgetcounter (kind, period_start, usd_spent, usd_reserved,
                                              tokens_spent, tokens_reserved, runs)
            VALUES ('month', p_month, 0, 0, 0, 0, 0) ON CONFLICT (kind, period_start) DO NOTHING;
            CONTINUE;
        END IF;
        outcome := 'refused';
        IF m.usd_spent + m.usd_reserved + usd > monthly_usd THEN
            limit_name := 'monthly_usd'; spent := m.usd_spent; reserved := m.usd_reserved;
            asked := usd; allowed := monthly_usd;
        ELSIF m.tokens_spent + m.tokens_reserved + tokens > monthly_tokens THEN
            limit_name := 'monthly_tokens'; spent := m.tokens_spent; reserved := m.tokens_reserved;
            asked := tokens; allowed := monthly_tokens;
        ELSE
            CONTINUE;
        END IF;
        UPDATE budget_budgetcounter
           SET usd_reserved = usd_reserved - usd, tokens_reserved = tokens_reserved - tokens,
               runs = runs - 1
         WHERE kind = 'day' AND period_start = p_day;
        DELETE FROM budget_budgetreservation WHERE id = held;
        day_used := NULL;
        RETURN;
    END LOOP;

    outcome := 'admitted';
END
$fn$;
"""

RESERVE_FUNCTION_DROP = (
    "DROP FUNCTION IF EXISTS budget_reserve_admit(text, text, text, text[], bigint, bigint, date, date,"
    " timestamptz, timestamptz, integer)"
)
