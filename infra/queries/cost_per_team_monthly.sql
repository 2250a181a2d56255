-- Cost per team and month: what each team spent in each calendar month
-- (UTC) of a range of months as Purser priced it when it happened: Lambda
-- from the invocation records, and every streamed service (Bedrock, NAT
-- gateways, API Gateway, DynamoDB, Step Functions, EC2, Fargate, SageMaker)
-- from the usage records. Each record counts once, however often it was
-- delivered; unpriced usage counts nothing. For one month, give it as both
-- parameters.
--
-- @param from_month YYYY-MM: the first month, inclusive
-- @param to_month YYYY-MM: the last month, inclusive
--
-- @returns month string: the month, YYYY-MM
-- @returns team string: the account's team when the record was made, '(none)' if it had none
-- @returns accounts integer: accounts of the team with invocations or usage that month
-- @returns invocations integer: Lambda invocations that ran that month
-- @returns lambda_usd decimal: their cost in US dollars (9 decimals)
-- @returns other_usd decimal: the cost of the other streamed services in US dollars (9 decimals)
-- @returns cost_usd decimal: both, in US dollars (9 decimals)
WITH records AS (
    SELECT dt, account_id, team, 'lambda' AS kind, concat(account_id, '/', request_id) AS id, "timestamp", cost_usd
    FROM invocations
    UNION ALL
    SELECT dt, account_id, team, 'usage' AS kind, usage_id AS id, "timestamp", coalesce(cost_usd, 0) AS cost_usd
    FROM usage
),
once AS (
    SELECT
        substr(dt, 1, 7) AS month,
        account_id,
        team,
        kind,
        cost_usd,
        row_number() OVER (PARTITION BY kind, id ORDER BY "timestamp") AS copy
    FROM records
    WHERE substr(dt, 1, 7) BETWEEN ? AND ?
)
SELECT
    month,
    coalesce(team, '(none)') AS team,
    count(DISTINCT account_id) AS accounts,
    sum(CASE WHEN kind = 'lambda' THEN 1 ELSE 0 END) AS invocations,
    CAST(coalesce(sum(CASE WHEN kind = 'lambda' THEN cost_usd END), 0) AS DECIMAL(18, 9)) AS lambda_usd,
    CAST(coalesce(sum(CASE WHEN kind = 'usage' THEN cost_usd END), 0) AS DECIMAL(18, 9)) AS other_usd,
    CAST(sum(cost_usd) AS DECIMAL(18, 9)) AS cost_usd
FROM once
WHERE copy = 1
GROUP BY month, coalesce(team, '(none)')
ORDER BY month, team
