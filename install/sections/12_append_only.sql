-- install/sections/12_append_only.sql: the one rule of the append-only tables (the evidence, an incident's history): a trigger that refuses every UPDATE, DELETE and TRUNCATE, whoever asks.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- Its arguments: what the table holds, as the message says it ("evidence",
-- "an incident's history"), and the hint: what to do instead.
CREATE FUNCTION ato.refuse_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% of %.% refused: % is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'insufficient_privilege', HINT = TG_ARGV[1];
END;
$$;
COMMENT ON FUNCTION ato.refuse_change() IS
    'Trigger of the append-only tables (the evidence, an incident''s history), with what the table holds and a hint as arguments: refuses every UPDATE, DELETE and TRUNCATE, whoever asks';
REVOKE ALL ON FUNCTION ato.refuse_change() FROM PUBLIC;
