-- install/sections/01_settings.sql: ato.setting(), through which the SQL functions read the ato_response.* settings (ato_response.c).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Settings
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.setting(name text)
RETURNS text
AS 'MODULE_PATHNAME', 'ato_setting'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ato.setting(text) IS
    'The value of an ato_response.* setting, with the module loaded first: what the SQL functions read their settings through, so that they work in a session that has not loaded the library (a pg_cron job)';
REVOKE ALL ON FUNCTION ato.setting(text) FROM PUBLIC;

CREATE FUNCTION ato.shard_name()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN nullif(ato.setting('ato_response.shard_name'), '');
COMMENT ON FUNCTION ato.shard_name() IS
    'This server''s name among the shards (ato_response.shard_name), NULL on a single server: the label notification and outbox rows carry';
REVOKE ALL ON FUNCTION ato.shard_name() FROM PUBLIC;
