-- Streamed cost per lease in a month: what each lease of an account cost
-- in one calendar month (UTC) as Purser priced it when it happened (Lambda
-- from the invocation records, every streamed service from the usage
-- records), with the lease's team, template, start and end. A lease (one
-- account request) covers its account from its start until the next lease
-- of the account starts, so what an account used while it was cleaned and
-- cooled after a lease is that lease's, and the first lease of an account
-- also covers what came before it. Leases come from the lake's `leases`
-- table; records of accounts with no lease there are left out. Each record
-- and each lease's start and end count once, however often they were
-- delivered; unpriced usage counts nothing. AWS's bill per lease is
-- cur_cost_per_account_day's (its lease_id).
--
-- @param month YYYY-MM: the month
--
-- @returns lease_id string: the lease (the account request's id)
-- @returns account_id string: the leased account
-- @returns team string: the team that held it
-- @returns template string: the lease template, null for a request without one
-- @returns started_at string: when the lease started (RFC 3339)
-- @returns ended_at string: when it ended (RFC 3339), null while it lasts
-- @returns records integer: invocations and usage records it covers that month
-- @returns cost_usd decimal: their cost in US dollars (9 decimals)
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
lease_ends AS (
    SELECT lease_id, "timestamp" AS ended_at
    FROM lease_events
    WHERE event = 'ended' AND copy = 1
),
records AS (
    SELECT dt, account_id, 'lambda' AS kind, request_id AS id, "timestamp", cost_usd
    FROM invocations
    UNION ALL
    SELECT dt, account_id, 'usage' AS kind, usage_id AS id, "timestamp", coalesce(cost_usd, 0) AS cost_usd
    FROM usage
),
once AS (
    SELECT
        account_id,
        "timestamp",
        cost_usd,
        row_number() OVER (PARTITION BY account_id, kind, id ORDER BY "timestamp") AS copy
    FROM records
    WHERE substr(dt, 1, 7) = ?
)
SELECT
    w.lease_id,
    w.account_id,
    w.team,
    w.template,
    w.started_at,
    e.ended_at,
    count(*) AS records,
    CAST(sum(o.cost_usd) AS DECIMAL(18, 9)) AS cost_usd
FROM once AS o
JOIN lease_windows AS w
    ON w.account_id = o.account_id
    AND (w.covers_from IS NULL OR w.covers_from <= o."timestamp")
    AND (w.covers_until IS NULL OR o."timestamp" < w.covers_until)
LEFT JOIN lease_ends AS e ON e.lease_id = w.lease_id
WHERE o.copy = 1
GROUP BY w.lease_id, w.account_id, w.team, w.template, w.started_at, e.ended_at
ORDER BY w.account_id, w.started_at, w.lease_id
