-- tables.sql -- the tables the ingest benchmark loads (and the breakdown
-- starts from): ato.login_events with monthly partitions covering the
-- data, and plain tables of the same columns and defaults (so the same
-- nextval() per row) without constraints or triggers, one of them with the
-- BRIN index of ato.login_events.

SELECT ato.create_event_partitions(date_trunc('hour', now()) - interval '31 days', now()) AS created \gset
CREATE TABLE bench.plain (LIKE ato.login_events INCLUDING DEFAULTS);
CREATE TABLE bench.plain_indexed (LIKE ato.login_events INCLUDING DEFAULTS);
CREATE INDEX ON bench.plain_indexed USING brin (occurred_at) WITH (pages_per_range = 32);
