-- Cost per team and day: what each team spent on each day (UTC) of a range
-- of days as Purser priced it when it happened: Lambda from the invocation
-- records, and every streamed service (Bedrock, NAT gateways, API Gateway,
-- DynamoDB, Step Functions, EC2, Fargate, SageMaker) from the usage records.
-- Each record counts once, however often it was delivered; unpriced usage
-- counts nothing.
--
-- @param from YYYY-MM-DD: the first day, inclusive
-- @param to YYYY-MM-DD: the last day, inclusive
--
-- @returns day string: the day, YYYY-MM-DD (UTC)
-- @returns team string: the account's team when the record was made, '(none)' if it had none
-- @returns invocations integer: Lambda invocations that ran that day
-- @returns lambda_usd decimal: their cost in US dollars (9 decimals)
-- @returns other_usd decimal: the cost of the other streamed services in US dollars (9 decimals)
-- @returns cost_usd decimal: both, in US dollars (9 decimals)
WITH records AS (
    SELECT dt, team, 'lambda' AS kind, concat(account_id, '/', request_id) AS id, "timestamp", cost_usd
    FROM invocations
    UNION ALL
    SELECT dt, team, 'usage' AS kind, usage_id AS id, "timestamp", coalesce(cost_usd, 0) AS cost_usd
    FROM usage
),
once AS (
    SELECT
        dt,
        team,
        kind,
        cost_usd,
        row_number() OVER (PARTITION BY kind, id ORDER BY "timestamp") AS copy
    FROM records
    WHERE dt BETWEEN ? AND ?
)
SELECT
    dt AS day,
    coalesce(team, '(none)') AS team,
    sum(CASE WHEN kind = 'lambda' THEN 1 ELSE 0 END) AS invocations,
    CAST(coalesce(sum(CASE WHEN kind = 'lambda' THEN cost_usd END), 0) AS DECIMAL(18, 9)) AS lambda_usd,
    CAST(coalesce(sum(CASE WHEN kind = 'usage' THEN cost_usd END), 0) AS DECIMAL(18, 9)) AS other_usd,
    CAST(sum(cost_usd) AS DECIMAL(18, 9)) AS cost_usd
FROM once
WHERE copy = 1
GROUP BY dt, coalesce(team, '(none)')
ORDER BY day, team
