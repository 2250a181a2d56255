-- AWS's own cost per team in a month, from the CUR 2.0 export: the
-- unblended cost of every line item of one billing period (a calendar
-- month), attributed to the team of the lease that covered its usage
-- account at its usage start (from the lake's `leases` table: a lease
-- covers its account from its start until the next lease of the account
-- starts, the first lease also what came before it), or, for an account
-- with no lease in the lake, to its team in Purser's registry; with the
-- Lambda part (product code AWSLambda) beside the total.
--
-- Tables: `cur` is the CUR 2.0 export's table (in Athena, the Glue table
-- the template creates over the export when CurExportLocation is set, its
-- partition `billing_period` projected from the export's
-- BILLING_PERIOD=YYYY-MM folders, so one month is scanned; locally, NDJSON
-- files under <data-dir>/lake/cur/ with a `billing_period` on each line, if
-- any, otherwise an empty table). `accounts` (account_id, team) is Purser's
-- account registry, one row an account (in Athena, a table or view in the
-- same database exported from the Store; locally, the engine builds it from
-- the `accounts` table of <data-dir>/purser.db, the newest request's team
-- for an account lent more than once).
--
-- @param month YYYY-MM: the billing period
--
-- @returns team string: the team of the lease that covered the usage (or the registry's), '(none)' for accounts Purser does not know
-- @returns accounts integer: usage accounts with line items that month
-- @returns cost_usd decimal: unblended cost of all line items, in US dollars (9 decimals)
-- @returns lambda_cost_usd decimal: the AWSLambda part of it (9 decimals)
WITH lease_events AS (
    SELECT
        lease_id,
        account_id,
        team,
        template,
        event,
        "timestamp",
        row_number() OVER (PARTITION BY lease_id, event ORDER BY "timestamp") AS copy
    FROM leases
),
-- A lease covers its account from its start (an account's first lease: from
-- the beginning) until the account's next lease starts.
lease_windows AS (
    SELECT
        lease_id,
        account_id,
        team,
        template,
        "timestamp" AS started_at,
        CASE
            WHEN lag("timestamp") OVER (PARTITION BY account_id ORDER BY "timestamp", lease_id) IS NULL
                THEN CAST(NULL AS VARCHAR)
            ELSE "timestamp"
        END AS covers_from,
        lead("timestamp") OVER (PARTITION BY account_id ORDER BY "timestamp", lease_id) AS covers_until
    FROM lease_events
    WHERE event = 'started' AND copy = 1
),
items AS (
    SELECT
        line_item_usage_account_id AS account_id,
        concat(
            substr(CAST(line_item_usage_start_date AS VARCHAR), 1, 10), 'T',
            substr(CAST(line_item_usage_start_date AS VARCHAR), 12, 8), '.000Z'
        ) AS usage_start,
        line_item_product_code AS product,
        line_item_unblended_cost AS cost
    FROM cur
    WHERE billing_period = ?
),
attributed AS (
    SELECT
        i.account_id,
        i.product,
        i.cost,
        coalesce(w.team, a.team, '(none)') AS team
    FROM items AS i
    LEFT JOIN lease_windows AS w
        ON w.account_id = i.account_id
        AND (w.covers_from IS NULL OR w.covers_from <= i.usage_start)
        AND (w.covers_until IS NULL OR i.usage_start < w.covers_until)
    LEFT JOIN accounts AS a ON a.account_id = i.account_id
)
SELECT
    team,
    count(DISTINCT account_id) AS accounts,
    CAST(sum(cost) AS DECIMAL(18, 9)) AS cost_usd,
    CAST(sum(CASE WHEN product = 'AWSLambda' THEN cost ELSE 0 END) AS DECIMAL(18, 9))
        AS lambda_cost_usd
FROM attributed
GROUP BY team
ORDER BY cost_usd DESC, team
