-- AWS's own cost per account and day in a month, from the CUR 2.0 export:
-- the unblended cost of every line item of one billing period (a calendar
-- month) per usage account and day of usage start (UTC), with the Lambda
-- part (product code AWSLambda) beside the total. The spend function
-- reconciles each account-day as max(CUR total, CUR non-Lambda + streamed
-- Lambda).
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
-- @returns cost_usd decimal: unblended cost of all line items, in US dollars (9 decimals)
-- @returns lambda_cost_usd decimal: the AWSLambda part of it (9 decimals)
WITH items AS (
    SELECT
        line_item_usage_account_id AS account_id,
        substr(CAST(line_item_usage_start_date AS VARCHAR), 1, 10) AS day,
        line_item_product_code AS product,
        line_item_unblended_cost AS cost
    FROM cur
    WHERE billing_period = ?
)
SELECT
    account_id,
    day,
    CAST(sum(cost) AS DECIMAL(18, 9)) AS cost_usd,
    CAST(sum(CASE WHEN product = 'AWSLambda' THEN cost ELSE 0 END) AS DECIMAL(18, 9))
        AS lambda_cost_usd
FROM items
GROUP BY account_id, day
ORDER BY account_id, day
