-- Lambda cost per team and day: what each team's functions cost on each day
-- (UTC) of a range of days, priced by the recorder from the invocation
-- records. Each invocation counts once, however often it was delivered.
--
-- @param from YYYY-MM-DD: the first day, inclusive
-- @param to YYYY-MM-DD: the last day, inclusive
--
-- @returns day string: the day, YYYY-MM-DD (UTC)
-- @returns team string: the account's team when the invocation was recorded, '(none)' if it had none
-- @returns invocations integer: invocations that ran that day
-- @returns cost_usd decimal: their cost in US dollars (9 decimals)
WITH once AS (
    SELECT
        dt,
        team,
        cost_usd,
        row_number() OVER (PARTITION BY account_id, request_id ORDER BY "timestamp") AS copy
    FROM invocations
    WHERE dt BETWEEN ? AND ?
)
SELECT
    dt AS day,
    coalesce(team, '(none)') AS team,
    count(*) AS invocations,
    CAST(sum(cost_usd) AS DECIMAL(18, 9)) AS cost_usd
FROM once
WHERE copy = 1
GROUP BY dt, coalesce(team, '(none)')
ORDER BY day, team
