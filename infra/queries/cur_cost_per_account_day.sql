-- AWS's own cost per account, day and service in a month, from the CUR 2.0
-- export: the unblended cost of every line item of one billing period (a
-- calendar month) per usage account, day of usage start (UTC) and the
-- service Purser streams it as (lambda, bedrock, nat_gateway, ec2, fargate,
-- sagemaker, api_gateway, dynamodb, step_functions), or '(other)' for what
-- Purser does not stream (storage, data transfer, every other service). The
-- spend function reconciles each account-day service by service: the larger
-- of the bill and the stream for each streamed service, the bill for the
-- rest, and never less than the streaming counter.
--
-- Tables: `cur` is the CUR 2.0 export's table (in Athena, the Glue table
-- the template creates over the export when CurExportLocation is set, its
-- partition `billing_period` projected from the export's
-- BILLING_PERIOD=YYYY-MM folders, so one month is scanned; locally, NDJSON
-- files under <data-dir>/lake/cur/ with a `billing_period` on each line, if
-- any, otherwise an empty table). The day is the first ten characters of
-- the text of line_item_usage_start_date in both engines.
--
-- @param month YYYY-MM: the billing period
--
-- @returns account_id string: the usage account
-- @returns day string: the day of usage start, YYYY-MM-DD (UTC)
-- @returns service string: the streamed service the line items are, or '(other)'
-- @returns cost_usd decimal: their unblended cost, in US dollars (9 decimals)
WITH items AS (
    SELECT
        line_item_usage_account_id AS account_id,
        substr(CAST(line_item_usage_start_date AS VARCHAR), 1, 10) AS day,
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
    account_id,
    day,
    service,
    CAST(sum(cost) AS DECIMAL(18, 9)) AS cost_usd
FROM items
GROUP BY account_id, day, service
ORDER BY account_id, day, service
