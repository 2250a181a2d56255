-- One team's Lambda cost per function over a range of days: what each of
-- the team's functions (an account, a region and a name) cost from one day
-- to another (UTC, inclusive), most expensive first, from the invocation
-- records. Each invocation counts once, however often it was delivered.
-- `GET /teams/{team}/costs?by=function` answers with it.
--
-- @param team string: the team (as recorded with the invocations)
-- @param from YYYY-MM-DD: the first day, inclusive
-- @param to YYYY-MM-DD: the last day, inclusive
--
-- @returns account_id string: the function's account
-- @returns region string: the function's region
-- @returns function_name string: the function's name
-- @returns invocations integer: invocations that ran in the range
-- @returns cost_usd decimal: their cost in US dollars (9 decimals)
WITH once AS (
    SELECT
        account_id,
        region,
        function_name,
        cost_usd,
        row_number() OVER (PARTITION BY account_id, request_id ORDER BY "timestamp") AS copy
    FROM invocations
    WHERE team = ? AND dt BETWEEN ? AND ?
)
SELECT
    account_id,
    region,
    function_name,
    count(*) AS invocations,
    CAST(sum(cost_usd) AS DECIMAL(18, 9)) AS cost_usd
FROM once
WHERE copy = 1
GROUP BY account_id, region, function_name
ORDER BY cost_usd DESC, account_id, region, function_name
