-- install/sections/02_geoip.sql: the GeoIP look-up functions and ato.geoip_status() (src/geoip*.c).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- GeoIP
-- ---------------------------------------------------------------------------

CREATE TYPE ato.geoip_result AS (
    country_code text,
    city         text,
    latitude     double precision,
    longitude    double precision,
    asn          bigint,
    as_org       text,
    network      cidr,
    details      jsonb
);
COMMENT ON TYPE ato.geoip_result IS
    'What the configured GeoIP databases know about one address: typed fields, the matched network, and every record as jsonb';

CREATE FUNCTION ato.geoip(ip_address inet)
RETURNS ato.geoip_result
AS 'MODULE_PATHNAME', 'ato_geoip'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ato.geoip(inet) IS
    'Every field the GeoIP databases (ato_response.geoip_database, ato_response.asn_database) hold for an address; NULL when none knows it';

CREATE FUNCTION ato.geoip_country(ip_address inet)
RETURNS text
AS 'MODULE_PATHNAME', 'ato_geoip_country'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ato.geoip_country(inet) IS
    'ISO 3166 alpha-2 country of an address from ato_response.geoip_database; NULL when unknown';

CREATE FUNCTION ato.geoip_status(
    OUT database      text,
    OUT setting       text,
    OUT path          text,
    OUT loaded        boolean,
    OUT database_type text,
    OUT built_at      timestamptz,
    OUT ip_version    integer,
    OUT node_count    bigint,
    OUT opened_at     timestamptz,
    OUT file_size     bigint,
    OUT file_modified timestamptz,
    OUT load_ms       double precision,
    OUT refused_at    timestamptz,
    OUT refused_size  bigint,
    OUT refused_reason text,
    OUT problem       text,
    OUT lookups       bigint,
    OUT misses        bigint,
    OUT errors        bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ato_geoip_status'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION ato.geoip_status() IS
    'The GeoIP databases as this session sees them: the verified private copy in use (type, build time, when loaded, size and mtime of the file it was read from, milliseconds to read and verify it), the last file refused and why, any problem, and this session''s lookup counts';
REVOKE ALL ON FUNCTION ato.geoip_status() FROM PUBLIC;

CREATE FUNCTION ato.is_special_purpose(address inet)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ato_is_special_purpose'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ato.is_special_purpose(inet) IS
    'True for an address of the IANA special-purpose registries that is not globally reachable, or for documentation or benchmarking (private, CGNAT, loopback, link-local, unique-local, multicast, ...): stored events from it get no GeoIP fields, whatever the database says (ato.geoip() still says what the database says)';
