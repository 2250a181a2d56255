-- AWS's own cost per team in a month, from the CUR 2.0 export: the
-- unblended cost of every line item of one billing period (a calendar
-- month), attributed to the team of its usage account in Purser's
-- registry, with the Lambda part (product code AWSLambda) beside the total.
--
-- Tables: `cur` is the CUR 2.0 export's table (in Athena, the Glue table
-- the template creates over the export when CurExportLocation is set, its
-- partition `billing_period` projected from the export's
-- BILLING_PERIOD=YYYY-MM folders, so one month is scanned; locally, NDJSON
-- files under <data-dir>/lake/cur/ with a `billing_period` on each line, if
-- any, otherwise an empty table). `accounts` (account_id, team) is Purser's
-- account registry (in Athena, a table or view in the same database
-- exported from the Store; locally, the engine builds it from the
-- `accounts` table of <data-dir>/purser.db).
--
-- @param month YYYY-MM: the billing period
--
-- @returns team string: the usage account's team, '(none)' for accounts Purser does not know
-- @returns accounts integer: usage accounts with line items that month
-- @returns cost_usd decimal: unblended cost of all line items, in US dollars (9 decimals)
-- @returns lambda_cost_usd decimal: the AWSLambda part of it (9 decimals)
WITH items AS (
    SELECT
        line_item_usage_account_id AS account_id,
        line_item_product_code AS product,
        line_item_unblended_cost AS cost
    FROM cur
    WHERE billing_period = ?
)
SELECT
    coalesce(a.team, '(none)') AS team,
    count(DISTINCT i.account_id) AS accounts,
    CAST(sum(i.cost) AS DECIMAL(18, 9)) AS cost_usd,
    CAST(sum(CASE WHEN i.product = 'AWSLambda' THEN i.cost ELSE 0 END) AS DECIMAL(18, 9))
        AS lambda_cost_usd
FROM items AS i
LEFT JOIN accounts AS a ON a.account_id = i.account_id
GROUP BY coalesce(a.team, '(none)')
ORDER BY cost_usd DESC, team
