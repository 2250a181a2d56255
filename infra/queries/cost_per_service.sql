-- Cost per team and service in a range of days: what each team spent on
-- each service (Lambda, Bedrock, NAT gateways, API Gateway, DynamoDB, Step
-- Functions, EC2, Fargate, SageMaker) as Purser priced it when it happened,
-- most expensive first. Each record counts once, however often it was
-- delivered. Usage no price covers is counted apart (unpriced_records):
-- its cost is unknown, never 0.
--
-- @param from YYYY-MM-DD: the first day, inclusive
-- @param to YYYY-MM-DD: the last day, inclusive
--
-- @returns team string: the account's team when the record was made, '(none)' if it had none
-- @returns service string: lambda, or the streamed service (bedrock, nat_gateway, api_gateway, dynamodb, step_functions, ec2, fargate, sagemaker)
-- @returns accounts integer: accounts of the team that used it
-- @returns records integer: records counted (invocations, or usage records)
-- @returns unpriced_records integer: usage records with no price, left out of the cost
-- @returns cost_usd decimal: the cost in US dollars (9 decimals)
WITH records AS (
    SELECT dt, account_id, team, 'lambda' AS service, concat(account_id, '/', request_id) AS id, "timestamp", cost_usd
    FROM invocations
    UNION ALL
    SELECT dt, account_id, team, service, usage_id AS id, "timestamp", cost_usd
    FROM usage
),
once AS (
    SELECT
        account_id,
        team,
        service,
        cost_usd,
        row_number() OVER (PARTITION BY service, id ORDER BY "timestamp") AS copy
    FROM records
    WHERE dt BETWEEN ? AND ?
)
SELECT
    coalesce(team, '(none)') AS team,
    service,
    count(DISTINCT account_id) AS accounts,
    count(*) AS records,
    sum(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END) AS unpriced_records,
    CAST(coalesce(sum(cost_usd), 0) AS DECIMAL(18, 9)) AS cost_usd
FROM once
WHERE copy = 1
GROUP BY coalesce(team, '(none)'), service
ORDER BY cost_usd DESC, team, service
