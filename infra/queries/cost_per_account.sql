-- Lambda cost per account in a month: what each member account's functions
-- cost in one calendar month (UTC), most expensive first, from the
-- invocation records. Each invocation counts once, however often it was
-- delivered.
--
-- @param month YYYY-MM: the month
--
-- @returns account_id string: the member account
-- @returns team string: the account's team when the invocations were recorded, '(none)' if it had none
-- @returns functions integer: distinct functions (by region and name) invoked
-- @returns invocations integer: invocations that ran that month
-- @returns cost_usd decimal: their cost in US dollars (9 decimals)
WITH once AS (
    SELECT
        account_id,
        team,
        region,
        function_name,
        cost_usd,
        row_number() OVER (PARTITION BY account_id, request_id ORDER BY "timestamp") AS copy
    FROM invocations
    WHERE substr(dt, 1, 7) = ?
)
SELECT
    account_id,
    coalesce(team, '(none)') AS team,
    count(DISTINCT concat(region, ':', function_name)) AS functions,
    count(*) AS invocations,
    CAST(sum(cost_usd) AS DECIMAL(18, 9)) AS cost_usd
FROM once
WHERE copy = 1
GROUP BY account_id, coalesce(team, '(none)')
ORDER BY cost_usd DESC, account_id, team
