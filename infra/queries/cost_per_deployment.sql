-- Lambda cost per deployment in a month: each invocation of one calendar
-- month (UTC) is attributed to the deployment of its account that was live
-- when it ran, that is the latest successful deployment of the account (any
-- stack; CI's SUCCEEDED or CloudFormation's CREATE_COMPLETE, UPDATE_COMPLETE
-- or IMPORT_COMPLETE) recorded at or before the invocation's timestamp.
-- Invocations before any recorded deployment of their account have no
-- deployment (stack and deployed_at null). Each invocation and each
-- deployment record counts once, however often it was delivered; of two
-- deployments of one account recorded in the same millisecond, the first
-- by stack name is taken.
--
-- Deployments are read whole (not restricted by `dt`): the one live at the
-- start of the month may be older than the month, and the table is small
-- next to invocations. Timestamps are compared as strings: they are all
-- RFC 3339 in UTC with milliseconds (2026-11-21T10:00:00.000Z), which sort
-- as time does.
--
-- @param month YYYY-MM: the month of the invocations
--
-- @returns account_id string: the member account
-- @returns team string: the account's team when the invocations were recorded, '(none)' if it had none
-- @returns stack string: the deployed stack, null before the account's first deployment
-- @returns deployed_at string: when the deployment was recorded (RFC 3339), null likewise
-- @returns commit string: the deployed commit, when CI reported one
-- @returns invocations integer: invocations that ran while the deployment was live
-- @returns cost_usd decimal: their cost in US dollars (9 decimals)
WITH once AS (
    SELECT
        account_id,
        team,
        "timestamp",
        cost_usd,
        row_number() OVER (PARTITION BY account_id, request_id ORDER BY "timestamp") AS copy
    FROM invocations
    WHERE substr(dt, 1, 7) = ?
),
succeeded AS (
    SELECT
        account_id,
        stack,
        "commit",
        "timestamp" AS deployed_at,
        row_number() OVER (
            PARTITION BY account_id, "timestamp" ORDER BY stack, "commit"
        ) AS copy
    FROM deployments
    WHERE status IN ('SUCCEEDED', 'CREATE_COMPLETE', 'UPDATE_COMPLETE', 'IMPORT_COMPLETE')
),
timeline AS (
    SELECT
        account_id,
        deployed_at AS happened_at,
        0 AS kind,
        deployed_at,
        CAST(NULL AS VARCHAR) AS team,
        CAST(NULL AS DOUBLE) AS cost_usd
    FROM succeeded
    WHERE copy = 1
    UNION ALL
    SELECT
        account_id,
        "timestamp" AS happened_at,
        1 AS kind,
        CAST(NULL AS VARCHAR) AS deployed_at,
        team,
        cost_usd
    FROM once
    WHERE copy = 1
),
attributed AS (
    SELECT
        account_id,
        kind,
        team,
        cost_usd,
        max(deployed_at) OVER (
            PARTITION BY account_id ORDER BY happened_at, kind
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS live_since
    FROM timeline
)
SELECT
    a.account_id,
    coalesce(a.team, '(none)') AS team,
    d.stack,
    a.live_since AS deployed_at,
    d."commit",
    count(*) AS invocations,
    CAST(sum(a.cost_usd) AS DECIMAL(18, 9)) AS cost_usd
FROM attributed AS a
LEFT JOIN succeeded AS d
    ON d.account_id = a.account_id AND d.deployed_at = a.live_since AND d.copy = 1
WHERE a.kind = 1
GROUP BY a.account_id, coalesce(a.team, '(none)'), d.stack, a.live_since, d."commit"
ORDER BY a.account_id, deployed_at NULLS FIRST, team
