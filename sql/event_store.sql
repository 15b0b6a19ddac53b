-- The event store: partitioned tables, the ways in (record_*, INSERT, COPY)
-- and enrichment from the bundled GeoIP database with real addresses.
SET timezone = 'UTC';

-- Three months of partitions; the rest lands in the default partitions.
SELECT ato.create_event_partitions('2024-01-15', '2024-03-01');
SELECT parent, partition, lower_bound, upper_bound, is_default
  FROM ato.event_partitions ORDER BY parent, is_default, lower_bound;

-- The three ways in, with user ids of every shape.
SELECT ato.record_login('3f0c8a4e-1f6b-4c1e-9d2a-6f1f3c2b9a10', '8.8.8.8', 'success',
                        '2024-01-20 10:00+00', 'Mozilla/5.0', 'web', '{"session": "s1"}') > 0 AS stored;
SELECT ato.record_login('alice@example.com', '2a02:2770::1', 'SUCCESS', '2024-02-03 08:30+00') > 0 AS stored;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('4711', '81.2.69.160', 'failure', '2024-02-10 12:00+00'),
       ('4711', '1.1.1.1', 'Challenge', '2024-02-10 12:01+00'),
       ('00u1abcdEFGH2345', '::ffff:85.214.132.117', 'success', '2024-02-11 09:00+00'),
       ('4711', NULL, 'success', '2024-02-12 00:00+00');
COPY ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent) FROM STDIN WITH (FORMAT csv);
bob@example.com,133.11.0.1,success,2024-02-20 07:00+00,curl/8.0
bob@example.com,2001:4860:4860::8888,failure,2024-02-20 07:05+00,
bob@example.com,200.160.2.3,success,2019-06-01 00:00+00,old import
\.

SELECT user_id, ip_address, outcome, occurred_at, country_code, source, metadata,
       tableoid::regclass AS partition
  FROM ato.login_events ORDER BY occurred_at, user_id;

-- Audit events: enriched where an address is given.
SELECT ato.record_event('alice@example.com', 'user.email_changed', '2024-02-03 08:40+00',
                        '2a02:2770::1', 'user', 'alice@example.com') > 0 AS stored;
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id, metadata)
VALUES ('4711', 'user.mfa.factor.activate', '2024-02-10 12:05+00', '1.1.1.1', 'factor', 'totp-1', '{"provider": "GOOGLE"}'),
       ('4711', 'billing.modified', '2024-02-10 12:06+00', NULL, NULL, NULL, NULL);
COPY ato.audit_events (actor_id, event_type, occurred_at, ip_address) FROM STDIN;
bob@example.com	user.password_changed	2024-02-20 07:10+00	133.11.0.1
\.
SELECT actor_id, event_type, occurred_at, ip_address, country_code, target_type, target_id, metadata
  FROM ato.audit_events ORDER BY occurred_at;

-- Every row got its own id.
SELECT count(*) = count(DISTINCT id) AS ids_unique,
       (SELECT count(*) FROM ato.login_events) + (SELECT count(*) FROM ato.audit_events) AS events
  FROM (SELECT id FROM ato.login_events UNION ALL SELECT id FROM ato.audit_events) ids;

-- Values the caller supplies are kept; only empty GeoIP columns are filled.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, country_code)
VALUES ('carol', '8.8.8.8', 'success', '2024-02-21 00:00+00', 'FR');
SELECT country_code FROM ato.login_events WHERE user_id = 'carol';

-- Enrichment agrees with ato.geoip_country() for every stored address.
SELECT count(*) AS disagreements
  FROM (SELECT ip_address, country_code FROM ato.login_events WHERE user_id <> 'carol'
        UNION ALL SELECT ip_address, country_code FROM ato.audit_events) e
 WHERE e.country_code IS DISTINCT FROM ato.geoip_country(e.ip_address);

-- A time window reads only its month's partition, through its BRIN index
-- (sequential scans are turned off because on a table this small the planner
-- rightly prefers reading it whole).
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM ato.login_events
 WHERE occurred_at >= '2024-02-10' AND occurred_at < '2024-02-11';
RESET enable_seqscan;

-- Updates are checked and normalised like inserts but keep the stored
-- enrichment; setting recorded_at to NULL asks for the row to be enriched
-- again.
UPDATE ato.login_events SET outcome = 'FAILURE', ip_address = '81.2.69.160' WHERE user_id = 'carol';
SELECT outcome, ip_address, country_code, recorded_at IS NOT NULL AS recorded
  FROM ato.login_events WHERE user_id = 'carol';
UPDATE ato.login_events SET country_code = NULL, recorded_at = NULL WHERE user_id = 'carol';
SELECT outcome, ip_address, country_code, recorded_at IS NOT NULL AND recorded_at <= now() AS recorded_again
  FROM ato.login_events WHERE user_id = 'carol';
