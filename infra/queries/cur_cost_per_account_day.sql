-- AWS's own cost per account, day and service in a month, from the CUR 2.0
-- export: the unblended cost of every line item of one billing period (a
-- calendar month) per usage account, day of usage start (UTC) and the
-- service Purser streams it as (lambda, bedrock, nat_gateway, ec2, fargate,
-- sagemaker, api_gateway, dynamodb, step_functions), or '(other)' for what
-- Purser does not stream (storage, data transfer, every other service), and
-- per lease: each line item belongs to the lease that covered its account
-- at its usage start (from the lake's `leases` table: a lease covers its
-- account from its start until the next lease of the account starts, the
-- first lease also what came before it), so a late line of a recycled
-- account is its previous team's, not the team that holds it now. The
-- spend function settles each team's account-days with it, service by
-- service: the larger of the bill and the stream for each streamed
-- service, the bill for the rest, and never less than the streaming
-- counter.
--
-- Tables: `cur` is the CUR 2.0 export's table (in Athena, the Glue table
-- the template creates over the export when CurExportLocation is set, its
-- partition `billing_period` projected from the export's
-- BILLING_PERIOD=YYYY-MM folders, so one month is scanned; locally, NDJSON
-- files under <data-dir>/lake/cur/ with a `billing_period` on each line, if
-- any, otherwise an empty table). The day is the first ten characters of
-- the text of line_item_usage_start_date in both engines, and its time the
-- eight from the twelfth (a space separates them in Athena, a T in
-- DataFusion), compared with the leases' RFC 3339 times as text.
--
-- @param month YYYY-MM: the billing period
--
-- @returns account_id string: the usage account
-- @returns day string: the day of usage start, YYYY-MM-DD (UTC)
-- @returns service string: the streamed service the line items are, or '(other)'
-- @returns cost_usd decimal: their unblended cost, in US dollars (9 decimals)
-- @returns team string: the team of the lease that covered the usage, null for an account with no lease in the lake
-- @returns lease_id string: that lease (the account request's id), null likewise
WITH lease_events AS (
    SELECT
        lease_id,
        account_id,
        team,
        template,
        event,
        "timestamp",
        row_number() OVER (PARTITION BY lease_id, event ORDER BY "timestamp") AS copy
    FROM leases
),
-- A lease covers its account from its start (an account's first lease: from
-- the beginning) until the account's next lease starts.
lease_windows AS (
    SELECT
        lease_id,
        account_id,
        team,
        template,
        "timestamp" AS started_at,
        CASE
            WHEN lag("timestamp") OVER (PARTITION BY account_id ORDER BY "timestamp", lease_id) IS NULL
                THEN CAST(NULL AS VARCHAR)
            ELSE "timestamp"
        END AS covers_from,
        lead("timestamp") OVER (PARTITION BY account_id ORDER BY "timestamp", lease_id) AS covers_until
    FROM lease_events
    WHERE event = 'started' AND copy = 1
),
items AS (
    SELECT
        line_item_usage_account_id AS account_id,
        substr(CAST(line_item_usage_start_date AS VARCHAR), 1, 10) AS day,
        concat(
            substr(CAST(line_item_usage_start_date AS VARCHAR), 1, 10), 'T',
            substr(CAST(line_item_usage_start_date AS VARCHAR), 12, 8), '.000Z'
        ) AS usage_start,
        CASE
            WHEN line_item_product_code = 'AWSLambda' THEN 'lambda'
            WHEN line_item_product_code = 'AmazonBedrock' THEN 'bedrock'
            WHEN line_item_product_code = 'AmazonEC2'
                AND line_item_usage_type LIKE '%NatGateway-Bytes%' THEN 'nat_gateway'
            WHEN line_item_product_code = 'AmazonEC2'
                AND line_item_usage_type LIKE '%BoxUsage%' THEN 'ec2'
            WHEN line_item_product_code = 'AmazonECS'
                AND line_item_usage_type LIKE '%Fargate%' THEN 'fargate'
            WHEN line_item_product_code = 'AmazonSageMaker' THEN 'sagemaker'
            WHEN line_item_product_code = 'AmazonApiGateway' THEN 'api_gateway'
            WHEN line_item_product_code = 'AmazonDynamoDB'
                AND line_item_usage_type LIKE '%RequestUnits%' THEN 'dynamodb'
            WHEN line_item_product_code = 'AWSStepFunctions' THEN 'step_functions'
            ELSE '(other)'
        END AS service,
        line_item_unblended_cost AS cost
    FROM cur
    WHERE billing_period = ?
)
SELECT
    i.account_id,
    i.day,
    i.service,
    CAST(sum(i.cost) AS DECIMAL(18, 9)) AS cost_usd,
    w.team,
    w.lease_id
FROM items AS i
LEFT JOIN lease_windows AS w
    ON w.account_id = i.account_id
    AND (w.covers_from IS NULL OR w.covers_from <= i.usage_start)
    AND (w.covers_until IS NULL OR i.usage_start < w.covers_until)
GROUP BY i.account_id, i.day, i.service, w.team, w.lease_id
ORDER BY i.account_id, i.day, i.service, w.lease_id
