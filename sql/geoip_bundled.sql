-- GeoIP look-ups against the bundled database (flat country_code layout),
-- with real addresses.  It is the setting's default (its boot value); the
-- suite's cluster points the setting at test/geo's regress.mmdb for every
-- other test, so this one sets the default back explicitly.
SET timezone = 'UTC';
LOAD 'ato_response';
SELECT boot_val AS bundled_path FROM pg_settings WHERE name = 'ato_response.geoip_database' \gset
SET ato_response.geoip_database = :'bundled_path';

SELECT database, setting, path LIKE '%/extension/ato_response/geo-whois-asn-country.mmdb' AS bundled_path,
       loaded, database_type, ip_version, built_at IS NOT NULL AS has_build_time, problem
  FROM ato.geoip_status();

SELECT ip, ato.geoip_country(ip::inet) AS country
  FROM unnest(ARRAY['8.8.8.8', '81.2.69.160', '1.1.1.1', '85.214.132.117', '133.11.0.1',
                    '200.160.2.3', '2a02:2770::1', '2001:4860:4860::8888', '2a01:4f8::1',
                    '::ffff:81.2.69.160', '8.8.8.0/24']) AS ip;

-- Addresses nobody routes are misses: NULL, not a placeholder.
SELECT ip, ato.geoip_country(ip::inet) AS country, ato.geoip(ip::inet) IS NULL AS no_record
  FROM unnest(ARRAY['10.0.0.1', '192.0.2.1', '127.0.0.1', '::1', 'fe80::1', '0.0.0.0', '::']) AS ip;
SELECT ato.geoip_country(NULL) IS NULL AS null_in_null_out, ato.geoip(NULL) IS NULL AS null_record;

-- ato.geoip() returns every field the record has: the bundled one has only
-- a country, so the rest is NULL and the matched network and record show.
SELECT * FROM ato.geoip('81.2.69.160');
SELECT (ato.geoip('2a02:2770::1')).country_code, (ato.geoip('2a02:2770::1')).network;
SELECT network, network >>= '::ffff:8.8.8.8'::inet AS network_holds_address, details
  FROM ato.geoip('::ffff:8.8.8.8');

-- The bundled file passed the whole-file check and is held as a private copy
-- of all its bytes.
SELECT file_size = (pg_stat_file(path)).size AS whole_file_copied, load_ms > 0 AS verified,
       refused_at IS NULL AND refused_reason IS NULL AS nothing_refused
  FROM ato.geoip_status() WHERE database = 'geoip';

-- No ASN database is configured by default.
SELECT database, loaded, path, problem FROM ato.geoip_status() WHERE database = 'asn';

-- Settings: only superusers may point the server at files.
SELECT name, context, unit FROM pg_settings WHERE name LIKE 'ato_response.%' ORDER BY name;
SET ato_response.unknown_setting = 1;

-- Turning enrichment off: look-ups ask for a database, events are still stored.
SET ato_response.geoip_database = '';
SELECT ato.geoip_country('8.8.8.8');
SELECT ato.geoip('8.8.8.8');
CREATE TEMP TABLE before_count AS SELECT count(*) AS n FROM ato.login_events;
SELECT ato.record_login('geo-off', '8.8.8.8', 'success') > 0 AS stored;
SELECT country_code FROM ato.login_events WHERE user_id = 'geo-off';
-- A missing file: a warning on ingest, an error on an explicit call.
SET ato_response.geoip_database = '/nonexistent/ato-missing.mmdb';
SELECT ato.record_login('geo-missing', '8.8.8.8', 'success') > 0 AS stored;
SELECT ato.record_login('geo-missing', '8.8.4.4', 'success') > 0 AS stored_without_second_warning;
SELECT count(*) AS stored, count(country_code) AS enriched FROM ato.login_events WHERE user_id = 'geo-missing';
SELECT loaded, problem FROM ato.geoip_status() WHERE database = 'geoip';
SELECT ato.geoip_country('8.8.8.8');
-- A directory is not a database either.
SET ato_response.geoip_database = '/';
SELECT ato.geoip_country('8.8.8.8');
SELECT ato.record_login('geo-dir', '8.8.8.8', 'success') > 0 AS stored;
SET ato_response.geoip_database = :'bundled_path';
SELECT ato.geoip_country('8.8.8.8') AS back_to_bundled;
SELECT (SELECT count(*) FROM ato.login_events) - n AS new_events FROM before_count;
-- The bundled file gives special-purpose addresses countries (a NAT'd office
-- "in Australia"); stored events from them get none, and so are never a new
-- country or a leg of a journey.  Globally reachable special ranges (6to4,
-- NAT64's well-known prefix) and ordinary addresses are looked up as usual.
SELECT a.address, ato.geoip_country(a.address) AS database_says, ato.is_special_purpose(a.address) AS special
  FROM unnest('{192.168.1.1, 10.1.2.3, 172.16.5.4, 100.64.1.1, 127.0.0.1, 169.254.1.1, 192.0.2.1,
                198.51.100.7, 203.0.113.9, 198.18.0.1, 224.0.0.1, 255.255.255.255, ::ffff:192.168.1.1,
                ::1, 2001:db8::1, 3fff::1, fd00::1, fe80::1, ff02::1, 100::1,
                8.8.8.8, 81.2.69.160, 2001:4860:4860::8888, 64:ff9b::808:808, 2002:808:808::1}'::inet[])
       AS a(address);
SELECT ato.record_login('office', a, 'success') > 0 AS stored
  FROM unnest('{192.168.1.1, 203.0.113.9, 2001:db8::1, 8.8.8.8}'::inet[]) AS a;
SELECT ip_address, country_code, asn, latitude FROM ato.login_events WHERE user_id = 'office' ORDER BY ip_address;
SELECT ato.is_special_purpose(NULL);
