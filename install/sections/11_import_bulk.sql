-- install/sections/11_import_bulk.sql: the bulk import of identity-provider logs: the views ato.okta_import, ato.auth0_import and ato.entra_import that COPY loads one JSON event a line into, and their triggers (src/import.c), which store the lines in batches with ato.import_batch().
-- A piece of the install script, which the Makefile assembles: not loadable alone.
-- It comes after 10_privileges.sql, so every object here carries its own REVOKE,
-- and after 11_import.sql, whose ato.import_batch() src/import.c calls.

-- ---------------------------------------------------------------------------
-- The bulk path: JSON lines through COPY
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.import_line()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ato_import_line'
LANGUAGE C;
COMMENT ON FUNCTION ato.import_line() IS
    'INSTEAD OF INSERT row trigger of the import views: keeps the line for the next batch (argument: the provider)';
REVOKE ALL ON FUNCTION ato.import_line() FROM PUBLIC;

CREATE FUNCTION ato.import_lines_end()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ato_import_lines_end'
LANGUAGE C;
COMMENT ON FUNCTION ato.import_lines_end() IS
    'AFTER INSERT statement trigger of the import views: stores the last batch and reports what was imported (argument: the provider)';
REVOKE ALL ON FUNCTION ato.import_lines_end() FROM PUBLIC;

-- One view per provider, one event (a JSON text) per row:
--   \copy ato.okta_import FROM 'okta.jsonl' (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
-- (JSON text never holds the control characters \x01 and \x02 unescaped, so
-- CSV with them as quote and delimiter reads each line whole, backslashes
-- and all.)  Nothing is stored in the view: the lines go to the event
-- tables and ato.import_rejections, in batches of 10,000.
CREATE VIEW ato.okta_import AS SELECT NULL::text AS event WHERE false;
CREATE VIEW ato.auth0_import AS SELECT NULL::text AS event WHERE false;
CREATE VIEW ato.entra_import AS SELECT NULL::text AS event WHERE false;
COMMENT ON VIEW ato.okta_import IS
    'Bulk import of Okta System Log events: COPY or INSERT one JSON event per row (a JSON-lines file); reads back nothing';
COMMENT ON VIEW ato.auth0_import IS
    'Bulk import of Auth0 log events: COPY or INSERT one JSON event per row (a JSON-lines file); reads back nothing';
COMMENT ON VIEW ato.entra_import IS
    'Bulk import of Microsoft Entra ID sign-in and audit events: COPY or INSERT one JSON event per row (a JSON-lines file); reads back nothing';
CREATE TRIGGER import_line INSTEAD OF INSERT ON ato.okta_import
    FOR EACH ROW EXECUTE FUNCTION ato.import_line('okta');
CREATE TRIGGER import_line INSTEAD OF INSERT ON ato.auth0_import
    FOR EACH ROW EXECUTE FUNCTION ato.import_line('auth0');
CREATE TRIGGER import_line INSTEAD OF INSERT ON ato.entra_import
    FOR EACH ROW EXECUTE FUNCTION ato.import_line('entra');
CREATE TRIGGER import_lines_end AFTER INSERT ON ato.okta_import
    FOR EACH STATEMENT EXECUTE FUNCTION ato.import_lines_end('okta');
CREATE TRIGGER import_lines_end AFTER INSERT ON ato.auth0_import
    FOR EACH STATEMENT EXECUTE FUNCTION ato.import_lines_end('auth0');
CREATE TRIGGER import_lines_end AFTER INSERT ON ato.entra_import
    FOR EACH STATEMENT EXECUTE FUNCTION ato.import_lines_end('entra');
REVOKE ALL ON ato.okta_import, ato.auth0_import, ato.entra_import FROM PUBLIC;
