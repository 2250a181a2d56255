-- The most expensive Lambda functions of a month: the functions (an
-- account, a region and a name) whose invocations cost the most in one
-- calendar month (UTC), from the invocation records. Each invocation counts
-- once, however often it was delivered.
--
-- @param month YYYY-MM: the month
-- @param limit integer: how many functions to return (the top N)
--
-- @returns rank integer: 1 for the most expensive
-- @returns account_id string: the function's account
-- @returns team string: the account's team when the invocations were recorded, '(none)' if it had none
-- @returns region string: the function's region
-- @returns function_name string: the function's name
-- @returns invocations integer: invocations that ran that month
-- @returns cold_starts integer: invocations with an init duration
-- @returns avg_billed_ms double: mean billed duration, in milliseconds
-- @returns cost_usd decimal: their cost in US dollars (9 decimals)
WITH once AS (
    SELECT
        account_id,
        team,
        region,
        function_name,
        billed_duration_ms,
        init_duration_ms,
        cost_usd,
        row_number() OVER (PARTITION BY account_id, request_id ORDER BY "timestamp") AS copy
    FROM invocations
    WHERE substr(dt, 1, 7) = ?
),
per_function AS (
    SELECT
        account_id,
        coalesce(team, '(none)') AS team,
        region,
        function_name,
        count(*) AS invocations,
        count(init_duration_ms) AS cold_starts,
        avg(CAST(billed_duration_ms AS DOUBLE)) AS avg_billed_ms,
        sum(cost_usd) AS cost
    FROM once
    WHERE copy = 1
    GROUP BY account_id, coalesce(team, '(none)'), region, function_name
),
ranked AS (
    SELECT
        row_number() OVER (ORDER BY cost DESC, account_id, region, function_name, team) AS rank,
        account_id,
        team,
        region,
        function_name,
        invocations,
        cold_starts,
        avg_billed_ms,
        cost
    FROM per_function
)
SELECT
    rank,
    account_id,
    team,
    region,
    function_name,
    invocations,
    cold_starts,
    avg_billed_ms,
    CAST(cost AS DECIMAL(18, 9)) AS cost_usd
FROM ranked
WHERE rank <= CAST(? AS INTEGER)
ORDER BY rank
