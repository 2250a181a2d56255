-- Lambda cost per team and month: what each team's functions cost in each
-- calendar month (UTC) of a range of months, from the invocation records.
-- Each invocation counts once, however often it was delivered. For one
-- month, give it as both parameters.
--
-- @param from_month YYYY-MM: the first month, inclusive
-- @param to_month YYYY-MM: the last month, inclusive
--
-- @returns month string: the month, YYYY-MM
-- @returns team string: the account's team when the invocation was recorded, '(none)' if it had none
-- @returns accounts integer: accounts of the team with invocations that month
-- @returns invocations integer: invocations that ran that month
-- @returns cost_usd decimal: their cost in US dollars (9 decimals)
WITH once AS (
    SELECT
        substr(dt, 1, 7) AS month,
        account_id,
        team,
        cost_usd,
        row_number() OVER (PARTITION BY account_id, request_id ORDER BY "timestamp") AS copy
    FROM invocations
    WHERE substr(dt, 1, 7) BETWEEN ? AND ?
)
SELECT
    month,
    coalesce(team, '(none)') AS team,
    count(DISTINCT account_id) AS accounts,
    count(*) AS invocations,
    CAST(sum(cost_usd) AS DECIMAL(18, 9)) AS cost_usd
FROM once
WHERE copy = 1
GROUP BY month, coalesce(team, '(none)')
ORDER BY month, team
