-- install/sections/01_arguments.sql: the one rule for account ids passed to the SQL functions (NULL: 22004, empty: 22023).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Arguments
-- ---------------------------------------------------------------------------

-- The same rule as the event trigger's (src/ingest.c) and revoke_incident's
-- (src/revoke.c): a NULL where a value is needed is 22004, an empty id 22023.
CREATE FUNCTION ato.check_account_id(caller text, argument text, user_id text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF user_id IS NULL THEN
        RAISE EXCEPTION '%: % must not be NULL', caller, argument
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id of the account as text.';
    ELSIF user_id = '' THEN
        RAISE EXCEPTION '%: % must not be empty', caller, argument
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An empty string names no account; pass the id of the account.';
    END IF;
END;
$$;
COMMENT ON FUNCTION ato.check_account_id(text, text, text) IS
    'Raises 22004 for a NULL account id and 22023 for an empty one, naming the calling function and its argument; what the SQL functions check their account ids with';
REVOKE ALL ON FUNCTION ato.check_account_id(text, text, text) FROM PUBLIC;

CREATE FUNCTION ato.check_account_ids(caller text, argument text, user_ids text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF user_ids IS NULL THEN
        RAISE EXCEPTION '%: % must not be NULL', caller, argument
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass an array of account ids, for example ARRAY[''alice''].';
    ELSIF cardinality(user_ids) = 0 THEN
        RAISE EXCEPTION '%: % is empty', caller, argument
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an array of account ids, for example ARRAY[''alice''].';
    END IF;
    n := array_position(user_ids, NULL);
    IF n IS NOT NULL THEN
        RAISE EXCEPTION '%: %[%] is NULL', caller, argument, n
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Remove the NULL elements.';
    END IF;
    n := array_position(user_ids, '');
    IF n IS NOT NULL THEN
        RAISE EXCEPTION '%: %[%] is empty', caller, argument, n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An empty string names no account; remove it.';
    END IF;
END;
$$;
COMMENT ON FUNCTION ato.check_account_ids(text, text, text[]) IS
    'Raises 22004 for a NULL array or element and 22023 for an empty array or element, naming the calling function and its argument';
REVOKE ALL ON FUNCTION ato.check_account_ids(text, text, text[]) FROM PUBLIC;
