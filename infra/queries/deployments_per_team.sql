-- Deployments per team: how many deployments each team's accounts made in a
-- range of days (UTC), how many failed, on how many stacks, and how long the
-- successful ones took. A deployment is counted by the record that ends it:
-- CI's SUCCEEDED or FAILED; CloudFormation's CREATE_COMPLETE,
-- UPDATE_COMPLETE or IMPORT_COMPLETE (succeeded), CREATE_FAILED,
-- UPDATE_FAILED, DELETE_FAILED, UPDATE_ROLLBACK_COMPLETE or
-- IMPORT_ROLLBACK_COMPLETE (failed). Each record counts once, however often
-- it was delivered.
--
-- @param from YYYY-MM-DD: the first day, inclusive
-- @param to YYYY-MM-DD: the last day, inclusive
--
-- @returns team string: the account's team when the deployment was recorded, '(none)' if it had none
-- @returns accounts integer: accounts of the team with deployment records
-- @returns stacks integer: distinct stacks (by account, region and name) with deployment records
-- @returns succeeded integer: deployments that succeeded
-- @returns failed integer: deployments that failed
-- @returns avg_duration_s double: mean duration of the successful ones that report it, in seconds (1 decimal)
WITH once AS (
    SELECT
        account_id,
        coalesce(team, '(none)') AS team,
        region,
        stack,
        status,
        duration_s,
        row_number() OVER (
            PARTITION BY account_id, region, stack, status, "timestamp" ORDER BY source
        ) AS copy
    FROM deployments
    WHERE dt BETWEEN ? AND ?
),
classified AS (
    SELECT
        account_id,
        team,
        region,
        stack,
        duration_s,
        CASE
            WHEN status IN ('SUCCEEDED', 'CREATE_COMPLETE', 'UPDATE_COMPLETE', 'IMPORT_COMPLETE')
                THEN 'succeeded'
            WHEN status IN (
                'FAILED', 'CREATE_FAILED', 'UPDATE_FAILED', 'DELETE_FAILED',
                'UPDATE_ROLLBACK_COMPLETE', 'IMPORT_ROLLBACK_COMPLETE'
            )
                THEN 'failed'
            ELSE 'other'
        END AS outcome
    FROM once
    WHERE copy = 1
)
SELECT
    team,
    count(DISTINCT account_id) AS accounts,
    count(DISTINCT concat(account_id, ':', region, ':', stack)) AS stacks,
    sum(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END) AS succeeded,
    sum(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS failed,
    round(avg(CASE WHEN outcome = 'succeeded' THEN duration_s END), 1) AS avg_duration_s
FROM classified
GROUP BY team
ORDER BY team
