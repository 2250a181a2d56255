-- Streamed cost per account, day and service in a month: what each member
-- account spent on each day (UTC) of one calendar month on each service
-- Purser prices as it happens (lambda from the invocation records; bedrock,
-- nat_gateway, api_gateway, dynamodb, step_functions, ec2, fargate and
-- sagemaker from the usage records), per team the records were made for
-- (the team that held the account then: its lease's). Each record counts
-- once, however often it was delivered; unpriced usage counts nothing. The
-- spend function reconciles the streaming counters with it every 15
-- minutes (and, where a CUR 2.0 export is configured, with
-- cur_cost_per_account_day, service by service).
--
-- @param month YYYY-MM: the month
--
-- @returns account_id string: the member account
-- @returns day string: the day, YYYY-MM-DD (UTC)
-- @returns service string: lambda, or the streamed service
-- @returns records integer: invocations or usage records counted that day
-- @returns cost_usd decimal: their cost in US dollars (9 decimals)
-- @returns team string: the account's team when the records were made, null if it had none
WITH records AS (
    SELECT dt, account_id, team, 'lambda' AS service, request_id AS id, "timestamp", cost_usd
    FROM invocations
    UNION ALL
    SELECT dt, account_id, team, service, usage_id AS id, "timestamp", cost_usd
    FROM usage
),
once AS (
    SELECT
        account_id,
        team,
        dt,
        service,
        cost_usd,
        row_number() OVER (PARTITION BY account_id, service, id ORDER BY "timestamp") AS copy
    FROM records
    WHERE substr(dt, 1, 7) = ?
)
SELECT
    account_id,
    dt AS day,
    service,
    count(*) AS records,
    CAST(coalesce(sum(cost_usd), 0) AS DECIMAL(18, 9)) AS cost_usd,
    team
FROM once
WHERE copy = 1
GROUP BY account_id, dt, service, team
ORDER BY account_id, day, service, team
