-- install/sections/01_arguments.sql: the one rule for account ids passed to the functions (NULL: 22004, empty: 22023; src/arguments.c).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Arguments
-- ---------------------------------------------------------------------------

-- Written once, in src/arguments.c, which the C functions call directly.
CREATE FUNCTION ato.check_account_id(caller text, argument text, user_id text)
RETURNS void
AS 'MODULE_PATHNAME', 'ato_check_account_id_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ato.check_account_id(text, text, text) IS
    'Raises 22004 for a NULL account id and 22023 for an empty one, naming the calling function and its argument; what the SQL functions check their account ids with';
REVOKE ALL ON FUNCTION ato.check_account_id(text, text, text) FROM PUBLIC;

CREATE FUNCTION ato.check_account_ids(caller text, argument text, user_ids text[])
RETURNS void
AS 'MODULE_PATHNAME', 'ato_check_account_ids_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ato.check_account_ids(text, text, text[]) IS
    'Raises 22004 for a NULL array or element and 22023 for an empty array or element, naming the calling function and its argument';
REVOKE ALL ON FUNCTION ato.check_account_ids(text, text, text[]) FROM PUBLIC;
