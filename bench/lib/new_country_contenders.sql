-- new_country_contenders.sql -- the two ways of asking "who logged in from
-- a new country and then changed their account", read with the window's
-- start :since where they are used: :ato_sql, the extension's function, and
-- :seed_sql, seed 004's first query on the plain tables bench.le and
-- bench.ae, its geo_events join read as the country column (an inner join:
-- a login needs a country) and its earlier logins restricted to successful
-- ones (the difference the issue asks for).  Shared by detect.sql and
-- bulk_load.sql.

\set ato_sql 'SELECT * FROM ato.new_country_logins(:''since'') WHERE suspicious_actions > 0 AND country_code IS NOT NULL'
SELECT $$SELECT le.user_id, le.ip_address, le.country_code, le.occurred_at, count(ae.event_type) AS suspicious_actions
  FROM bench.le le
  LEFT JOIN bench.ae ae ON ae.actor_id = le.user_id
       AND ae.event_type IN ('user.email_changed', 'user.password_changed', 'billing.modified')
       AND ae.occurred_at BETWEEN le.occurred_at AND le.occurred_at + interval '1 hour'
 WHERE le.outcome = 'success' AND le.occurred_at >= :'since' AND le.country_code IS NOT NULL
   AND le.country_code NOT IN (SELECT DISTINCT le2.country_code FROM bench.le le2
                                WHERE le2.user_id = le.user_id AND le2.occurred_at < :'since'
                                  AND le2.outcome = 'success' AND le2.country_code IS NOT NULL)
 GROUP BY le.user_id, le.ip_address, le.country_code, le.occurred_at
HAVING count(ae.event_type) > 0$$ AS seed_sql \gset
