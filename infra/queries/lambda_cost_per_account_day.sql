-- Lambda cost per account and day in a month: what each member account's
-- functions cost on each day (UTC) of one calendar month, from the
-- invocation records. Each invocation counts once, however often it was
-- delivered. The spend function reconciles the streaming counters with it
-- every 15 minutes (and, where a CUR 2.0 export is configured, with
-- cur_cost_per_account_day).
--
-- @param month YYYY-MM: the month
--
-- @returns account_id string: the member account
-- @returns day string: the day, YYYY-MM-DD (UTC)
-- @returns invocations integer: invocations that ran that day
-- @returns cost_usd decimal: their cost in US dollars (9 decimals)
WITH once AS (
    SELECT
        account_id,
        dt,
        cost_usd,
        row_number() OVER (PARTITION BY account_id, request_id ORDER BY "timestamp") AS copy
    FROM invocations
    WHERE substr(dt, 1, 7) = ?
)
SELECT
    account_id,
    dt AS day,
    count(*) AS invocations,
    CAST(sum(cost_usd) AS DECIMAL(18, 9)) AS cost_usd
FROM once
WHERE copy = 1
GROUP BY account_id, dt
ORDER BY account_id, day
