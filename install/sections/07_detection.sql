-- install/sections/07_detection.sql: the detection functions (src/detect.c) and the data they read: listed networks, persistence event types, country centres.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Detection
-- ---------------------------------------------------------------------------
-- C functions (src/detect.c), SECURITY DEFINER so that an investigator needs
-- EXECUTE on them and nothing on the tables; not PUBLIC.

CREATE FUNCTION ato.new_country_logins(
    since         timestamptz DEFAULT now() - interval '1 hour',
    action_window interval    DEFAULT interval '1 hour',
    action_types  text[]      DEFAULT '{user.email_changed,user.password_changed,billing.modified}')
RETURNS TABLE (user_id text, ip_address inet, country_code text, occurred_at timestamptz,
               suspicious_actions bigint)
AS 'MODULE_PATHNAME', 'ato_new_country_logins'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.new_country_logins(timestamptz, interval, text[]) IS
    'Successful logins at or after since from a country the account had never logged in from successfully before since, with the number of action_types audit events by the account within action_window after each; logins with no known country come with country_code NULL';
REVOKE ALL ON FUNCTION ato.new_country_logins(timestamptz, interval, text[]) FROM PUBLIC;

CREATE FUNCTION ato.cidr_scope(
    cidrs cidr[],
    since timestamptz DEFAULT now() - interval '24 hours')
RETURNS TABLE (user_id text, logins bigint, first_login timestamptz, last_login timestamptz,
               ips inet[], actions jsonb)
AS 'MODULE_PATHNAME', 'ato_cidr_scope'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.cidr_scope(cidr[], timestamptz) IS
    'One row per account with a successful login from any of the networks (IPv4 or IPv6) since then: how many, first and last, from which addresses, and its audit events by type since the first';
REVOKE ALL ON FUNCTION ato.cidr_scope(cidr[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.suspicious_action_counts(
    user_ids text[],
    since    timestamptz DEFAULT now() - interval '24 hours')
RETURNS TABLE (event_type text, actions bigint, accounts bigint)
AS 'MODULE_PATHNAME', 'ato_suspicious_action_counts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.suspicious_action_counts(text[], timestamptz) IS
    'What the given accounts did since then: audit events by type, with how many of the accounts did each, most frequent first';
REVOKE ALL ON FUNCTION ato.suspicious_action_counts(text[], timestamptz) FROM PUBLIC;

-- The rest of the hunt kit.

CREATE FUNCTION ato.credential_stuffing(
    since            timestamptz      DEFAULT now() - interval '1 hour',
    min_attempts     integer          DEFAULT 20,
    max_success_rate double precision DEFAULT 0.05)
RETURNS TABLE (source_kind text, source text, attempts bigint, successes bigint,
               success_rate double precision, accounts bigint, suspicious boolean)
AS 'MODULE_PATHNAME', 'ato_credential_stuffing'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.credential_stuffing(timestamptz, integer, double precision) IS
    'Login attempts since then per source (address, IPv4 /24 or IPv6 /48 network, autonomous system) with at least min_attempts: successes, success rate, accounts tried; suspicious when the success rate is at most max_success_rate (credential stuffing succeeds 1-3% of the time)';
REVOKE ALL ON FUNCTION ato.credential_stuffing(timestamptz, integer, double precision) FROM PUBLIC;

-- What credential_stuffing counts, in a shape that adds up across shards
-- (ato_response_proxy): the counts without the rate, every source or some.
CREATE FUNCTION ato.credential_stuffing_counts(
    since        timestamptz,
    min_attempts integer DEFAULT 1,
    sources      text[]  DEFAULT NULL)
RETURNS TABLE (source_kind text, source text, attempts bigint, successes bigint, accounts bigint)
AS 'MODULE_PATHNAME', 'ato_credential_stuffing_counts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.credential_stuffing_counts(timestamptz, integer, text[]) IS
    'This server''s login attempts, successes and accounts per source since then (as ato.credential_stuffing() groups them), for the sources with at least min_attempts, of those named in sources (''<kind> <source>'') or of all when it is NULL: the shards'' counts add up to one node''s (accounts are disjoint across shards)';
REVOKE ALL ON FUNCTION ato.credential_stuffing_counts(timestamptz, integer, text[]) FROM PUBLIC;

CREATE FUNCTION ato.password_spray(
    since                    timestamptz      DEFAULT now() - interval '1 hour',
    min_accounts             integer          DEFAULT 10,
    max_attempts_per_account double precision DEFAULT 3)
RETURNS TABLE (ip_address inet, accounts bigint, failures bigint, successes bigint,
               attempts_per_account double precision, first_attempt timestamptz, last_attempt timestamptz)
AS 'MODULE_PATHNAME', 'ato_password_spray'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.password_spray(timestamptz, integer, double precision) IS
    'Addresses that failed against at least min_accounts accounts since then with at most max_attempts_per_account tries each: one password sprayed over many accounts';
REVOKE ALL ON FUNCTION ato.password_spray(timestamptz, integer, double precision) FROM PUBLIC;

-- What password_spray counts, in a shape that adds up across shards.
CREATE FUNCTION ato.password_spray_counts(
    since        timestamptz,
    min_accounts integer DEFAULT 0,
    addresses    inet[]  DEFAULT NULL)
RETURNS TABLE (ip_address inet, accounts bigint, accounts_tried bigint, attempts bigint, failures bigint,
               successes bigint, first_attempt timestamptz, last_attempt timestamptz)
AS 'MODULE_PATHNAME', 'ato_password_spray_counts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.password_spray_counts(timestamptz, integer, inet[]) IS
    'This server''s login attempts per address since then, for the addresses that failed against at least min_accounts accounts (0: every address), of those in addresses or of all when it is NULL: accounts failed against, accounts tried, attempts, failures, successes, first and last attempt; the shards'' counts add up to one node''s, and ato.password_spray()''s attempts_per_account is attempts / accounts_tried of the sums';
REVOKE ALL ON FUNCTION ato.password_spray_counts(timestamptz, integer, inet[]) FROM PUBLIC;

CREATE FUNCTION ato.failed_login_bursts(
    since        timestamptz DEFAULT now() - interval '1 hour',
    min_failures integer     DEFAULT 10,
    burst_window interval    DEFAULT interval '10 minutes')
RETURNS TABLE (user_id text, failures bigint, burst bigint, sources bigint,
               first_failure timestamptz, last_failure timestamptz, later_success timestamptz)
AS 'MODULE_PATHNAME', 'ato_failed_login_bursts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.failed_login_bursts(timestamptz, integer, interval) IS
    'Accounts with at least min_failures failed logins within some burst_window since then (brute force): the largest burst, from how many addresses, and the first successful login after the first failure, if any';
REVOKE ALL ON FUNCTION ato.failed_login_bursts(timestamptz, integer, interval) FROM PUBLIC;

CREATE TABLE ato.listed_networks (
    network    cidr        NOT NULL,
    label      text        NOT NULL,
    source     text,
    added_at   timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);
CREATE INDEX listed_networks_network_idx ON ato.listed_networks USING gist (network inet_ops);
COMMENT ON TABLE ato.listed_networks IS
    'Networks to watch (threat feeds, hosting ranges, Tor exits), filled with COPY: label says what a network is, source where the listing came from; expires_at NULL never expires';
SELECT pg_catalog.pg_extension_config_dump('ato.listed_networks', '');

-- The way to list and unlist one network by hand, as block_network() and
-- unblock_network() are for blocking; feeds still arrive by COPY.
CREATE FUNCTION ato.list_network(network cidr, label text, source text DEFAULT NULL,
                                 expires_at timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF network IS NULL OR label IS NULL OR label = '' THEN
        RAISE EXCEPTION 'list_network: network and label must not be NULL or empty'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'For example SELECT ato.list_network(''198.51.100.0/24'', ''hosting'', ''abuse feed'').';
    END IF;
    IF expires_at <= now() THEN
        RAISE EXCEPTION 'list_network: expires_at % is not in the future', expires_at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a later time, or NULL to list it until ato.unlist_network() is called.';
    END IF;
    DELETE FROM ato.listed_networks n
     WHERE n.network = list_network.network AND n.label = list_network.label;
    INSERT INTO ato.listed_networks (network, label, source, expires_at)
    VALUES (network, label, source, expires_at);
END;
$$;
COMMENT ON FUNCTION ato.list_network(cidr, text, text, timestamptz) IS
    'Lists a network under a label for ato.listed_network_logins() until expires_at (NULL: until unlisted); listing it again under the same label replaces source and expiry';
REVOKE ALL ON FUNCTION ato.list_network(cidr, text, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.unlist_network(network cidr, label text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed integer;
BEGIN
    DELETE FROM ato.listed_networks n
     WHERE n.network = unlist_network.network
       AND (unlist_network.label IS NULL OR n.label = unlist_network.label);
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$$;
COMMENT ON FUNCTION ato.unlist_network(cidr, text) IS
    'Removes a network''s listing under label (NULL: under every label); returns how many were removed';
REVOKE ALL ON FUNCTION ato.unlist_network(cidr, text) FROM PUBLIC;

CREATE FUNCTION ato.listed_network_logins(
    since  timestamptz DEFAULT now() - interval '24 hours',
    labels text[]      DEFAULT NULL)
RETURNS TABLE (user_id text, ip_address inet, occurred_at timestamptz, network cidr, label text, source text)
AS 'MODULE_PATHNAME', 'ato_listed_network_logins'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.listed_network_logins(timestamptz, text[]) IS
    'Successful logins since then from a network of ato.listed_networks that had not expired at the time (only those with one of labels, when given), one row per login and matching listing';
REVOKE ALL ON FUNCTION ato.listed_network_logins(timestamptz, text[]) FROM PUBLIC;

CREATE TABLE ato.persistence_event_types (
    pattern     text    PRIMARY KEY,
    category    text    NOT NULL,
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE ato.persistence_event_types IS
    'Audit event types (LIKE patterns) that give an attacker a way back in, by category; add your application''s own';
INSERT INTO ato.persistence_event_types (pattern, category, builtin) VALUES
    ('user.mfa.factor.activate',          'mfa_factor_added',     true),
    ('user.mfa.factor.enroll%',           'mfa_factor_added',     true),
    ('user.mfa.factor.deactivate',        'mfa_factor_removed',   true),
    ('user.mfa.factor.reset_all',         'mfa_factor_removed',   true),
    ('user.mfa.factor.update_phone',      'mfa_phone_changed',    true),
    ('user.mfa.%',                        'mfa_changed',          true),
    ('application.user_membership.add',   'app_granted',          true),
    ('app.oauth2.%consent.grant%',        'oauth_grant',          true),
    ('%oauth%grant%',                     'oauth_grant',          true),
    ('group.user_membership.add',         'group_granted',        true),
    ('user.account.privilege.grant',      'role_granted',         true),
    ('%role%grant%',                      'role_granted',         true),
    ('system.api_token.create',           'api_token_created',    true),
    ('%api_key%creat%',                   'api_token_created',    true),
    ('%recovery%',                        'recovery_changed',     true),
    ('user.email_changed',                'email_changed',        true),
    ('user.account.update_primary_email', 'email_changed',        true),
    ('%identity%link%',                   'identity_linked',      true),
    -- a new account is a way back in that survives the victim's password reset
    ('user.lifecycle.create',             'account_created',      true),
    -- the same changes under Microsoft Entra ID's and Auth0's own names (ato.import_events())
    ('Add user',                          'account_created',      true),
    ('Add member to role',                'role_granted',         true),
    ('User registered security info',     'mfa_factor_added',     true),
    ('User deleted security info',        'mfa_factor_removed',   true),
    ('Add service principal credentials', 'api_token_created',    true),
    ('gd_enrollment_complete',            'mfa_factor_added',     true),
    ('gd_unenroll',                       'mfa_factor_removed',   true),
    ('sce',                               'email_changed',        true);
SELECT pg_catalog.pg_extension_config_dump('ato.persistence_event_types', 'WHERE NOT builtin');

CREATE FUNCTION ato.persistence_changes(
    user_ids text[]      DEFAULT NULL,
    since    timestamptz DEFAULT now() - interval '24 hours')
RETURNS TABLE (actor_id text, category text, event_type text, occurred_at timestamptz, ip_address inet,
               country_code text, target_type text, target_id text)
AS 'MODULE_PATHNAME', 'ato_persistence_changes'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.persistence_changes(text[], timestamptz) IS
    'Audit events since then that give an attacker a way back in (MFA factors, phone, app and role grants, API tokens, recovery settings; see ato.persistence_event_types), of the given accounts or of all when user_ids is NULL';
REVOKE ALL ON FUNCTION ato.persistence_changes(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.related_accounts(
    user_ids                 text[],
    since                    timestamptz DEFAULT now() - interval '7 days',
    rare_user_agent_accounts integer     DEFAULT 5)
RETURNS TABLE (user_id text, shared_addresses inet[], shared_user_agents text[], related_to text[],
               logins bigint, first_login timestamptz, last_login timestamptz)
AS 'MODULE_PATHNAME', 'ato_related_accounts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.related_accounts(text[], timestamptz, integer) IS
    'Other accounts with successful logins since then from an address the given accounts logged in from, or with a user agent of theirs that at most rare_user_agent_accounts accounts used: who else the attacker got into';
REVOKE ALL ON FUNCTION ato.related_accounts(text[], timestamptz, integer) FROM PUBLIC;

-- related_accounts in three steps that compose across shards: what the
-- given accounts used, how many accounts used those user agents, and the
-- accounts related to what every shard saw.
CREATE FUNCTION ato.related_accounts_seen(user_ids text[], since timestamptz)
RETURNS TABLE (given_id text, ip_address inet, user_agent text)
AS 'MODULE_PATHNAME', 'ato_related_accounts_seen'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.related_accounts_seen(text[], timestamptz) IS
    'The addresses and user agents of the given accounts'' successful logins since then on this server, one row per distinct triple: the first step of ato.related_accounts() across shards';
REVOKE ALL ON FUNCTION ato.related_accounts_seen(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.user_agent_accounts(user_agents text[], since timestamptz)
RETURNS TABLE (user_agent text, accounts bigint)
AS 'MODULE_PATHNAME', 'ato_user_agent_accounts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.user_agent_accounts(text[], timestamptz) IS
    'How many accounts of this server logged in successfully since then with each of the given user agents (the shards'' counts add up): the second step of ato.related_accounts() across shards, which keeps the rare ones';
REVOKE ALL ON FUNCTION ato.user_agent_accounts(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.related_accounts_to(
    user_ids         text[],
    since            timestamptz,
    seen_ids         text[],
    seen_addresses   inet[],
    seen_user_agents text[])
RETURNS TABLE (user_id text, shared_addresses inet[], shared_user_agents text[], related_to text[],
               logins bigint, first_login timestamptz, last_login timestamptz)
AS 'MODULE_PATHNAME', 'ato_related_accounts_to'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.related_accounts_to(text[], timestamptz, text[], inet[], text[]) IS
    'ato.related_accounts() of this server''s accounts, given what the accounts used on every shard (element i of the seen arrays: a given account, an address it logged in from, and a rare user agent it used or NULL): the last step across shards; the union over the shards is one node''s answer';
REVOKE ALL ON FUNCTION ato.related_accounts_to(text[], timestamptz, text[], inet[], text[]) FROM PUBLIC;

-- Impossible travel.  Where GeoIP has no coordinates, a login is placed at
-- the rough centre of its country (one decimal, written for this purpose:
-- good for "Paris to Sydney in an hour", not for neighbouring towns).
CREATE TABLE ato.country_centroids (
    country_code text             PRIMARY KEY,
    latitude     double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude    double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180)
);
COMMENT ON TABLE ato.country_centroids IS
    'Rough geographic centre of each country (ISO 3166 alpha-2), where ato.impossible_travel() places a login that has a country but no coordinates';
INSERT INTO ato.country_centroids (country_code, latitude, longitude) VALUES
    ('AD', 42.5, 1.6), ('AE', 23.9, 54.0), ('AF', 33.9, 67.7), ('AG', 17.1, -61.8),
    ('AI', 18.2, -63.1), ('AL', 41.2, 20.2), ('AM', 40.1, 45.0), ('AO', -11.2, 17.9),
    ('AQ', -75.3, 0.0), ('AR', -38.4, -63.6), ('AS', -14.3, -170.7), ('AT', 47.5, 14.6),
    ('AU', -25.3, 133.8), ('AW', 12.5, -70.0), ('AX', 60.2, 20.0), ('AZ', 40.1, 47.6),
    ('BA', 43.9, 17.7), ('BB', 13.2, -59.5), ('BD', 23.7, 90.4), ('BE', 50.5, 4.5),
    ('BF', 12.2, -1.6), ('BG', 42.7, 25.5), ('BH', 26.0, 50.6), ('BI', -3.4, 29.9),
    ('BJ', 9.3, 2.3), ('BL', 17.9, -62.8), ('BM', 32.3, -64.8), ('BN', 4.5, 114.7),
    ('BO', -16.3, -63.6), ('BQ', 12.2, -68.3), ('BR', -14.2, -51.9), ('BS', 25.0, -77.4),
    ('BT', 27.5, 90.4), ('BW', -22.3, 24.7), ('BY', 53.7, 28.0), ('BZ', 17.2, -88.5),
    ('CA', 56.1, -106.3), ('CC', -12.2, 96.9), ('CD', -4.0, 21.8), ('CF', 6.6, 20.9),
    ('CG', -0.2, 15.8), ('CH', 46.8, 8.2), ('CI', 7.5, -5.5), ('CK', -21.2, -159.8),
    ('CL', -35.7, -71.5), ('CM', 7.4, 12.4), ('CN', 35.9, 104.2), ('CO', 4.6, -74.3),
    ('CR', 9.7, -83.8), ('CU', 21.5, -77.8), ('CV', 16.0, -24.0), ('CW', 12.2, -69.0),
    ('CX', -10.5, 105.7), ('CY', 35.1, 33.4), ('CZ', 49.8, 15.5), ('DE', 51.2, 10.5),
    ('DJ', 11.8, 42.6), ('DK', 56.3, 9.5), ('DM', 15.4, -61.4), ('DO', 18.7, -70.2),
    ('DZ', 28.0, 1.7), ('EC', -1.8, -78.2), ('EE', 58.6, 25.0), ('EG', 26.8, 30.8),
    ('EH', 24.2, -12.9), ('ER', 15.2, 39.8), ('ES', 40.5, -3.7), ('ET', 9.1, 40.5),
    ('FI', 61.9, 25.7), ('FJ', -17.7, 178.1), ('FK', -51.8, -59.5), ('FM', 7.4, 150.6),
    ('FO', 61.9, -6.9), ('FR', 46.2, 2.2), ('GA', -0.8, 11.6), ('GB', 55.4, -3.4),
    ('GD', 12.1, -61.7), ('GE', 42.3, 43.4), ('GF', 3.9, -53.1), ('GG', 49.5, -2.6),
    ('GH', 7.9, -1.0), ('GI', 36.1, -5.4), ('GL', 71.7, -42.6), ('GM', 13.4, -15.3),
    ('GN', 9.9, -9.7), ('GP', 16.3, -61.6), ('GQ', 1.7, 10.3), ('GR', 39.1, 21.8),
    ('GT', 15.8, -90.2), ('GU', 13.4, 144.8), ('GW', 11.8, -15.2), ('GY', 4.9, -58.9),
    ('HK', 22.4, 114.1), ('HN', 15.2, -86.2), ('HR', 45.1, 15.2), ('HT', 19.0, -72.3),
    ('HU', 47.2, 19.5), ('ID', -0.8, 113.9), ('IE', 53.4, -8.2), ('IL', 31.0, 34.9),
    ('IM', 54.2, -4.5), ('IN', 20.6, 79.0), ('IO', -6.3, 71.9), ('IQ', 33.2, 43.7),
    ('IR', 32.4, 53.7), ('IS', 65.0, -19.0), ('IT', 41.9, 12.6), ('JE', 49.2, -2.1),
    ('JM', 18.1, -77.3), ('JO', 30.6, 36.2), ('JP', 36.2, 138.3), ('KE', -0.0, 37.9),
    ('KG', 41.2, 74.8), ('KH', 12.6, 105.0), ('KI', 1.9, -157.4), ('KM', -11.9, 43.9),
    ('KN', 17.4, -62.8), ('KP', 40.3, 127.5), ('KR', 35.9, 127.8), ('KW', 29.3, 47.5),
    ('KY', 19.3, -81.3), ('KZ', 48.0, 66.9), ('LA', 19.9, 102.5), ('LB', 33.9, 35.9),
    ('LC', 13.9, -61.0), ('LI', 47.2, 9.6), ('LK', 7.9, 80.8), ('LR', 6.4, -9.4),
    ('LS', -29.6, 28.2), ('LT', 55.2, 23.9), ('LU', 49.8, 6.1), ('LV', 56.9, 24.6),
    ('LY', 26.3, 17.2), ('MA', 31.8, -7.1), ('MC', 43.7, 7.4), ('MD', 47.4, 28.4),
    ('ME', 42.7, 19.4), ('MF', 18.1, -63.1), ('MG', -18.8, 46.9), ('MH', 7.1, 171.2),
    ('MK', 41.6, 21.7), ('ML', 17.6, -4.0), ('MM', 21.9, 96.0), ('MN', 46.9, 103.8),
    ('MO', 22.2, 113.5), ('MP', 15.2, 145.7), ('MQ', 14.6, -61.0), ('MR', 21.0, -10.9),
    ('MS', 16.7, -62.2), ('MT', 35.9, 14.4), ('MU', -20.3, 57.6), ('MV', 3.2, 73.2),
    ('MW', -13.3, 34.3), ('MX', 23.6, -102.6), ('MY', 4.2, 102.0), ('MZ', -18.7, 35.5),
    ('NA', -22.9, 18.5), ('NC', -20.9, 165.6), ('NE', 17.6, 8.1), ('NF', -29.0, 168.0),
    ('NG', 9.1, 8.7), ('NI', 12.9, -85.2), ('NL', 52.1, 5.3), ('NO', 60.5, 8.5),
    ('NP', 28.4, 84.1), ('NR', -0.5, 166.9), ('NU', -19.1, -169.9), ('NZ', -40.9, 174.9),
    ('OM', 21.5, 55.9), ('PA', 8.5, -80.8), ('PE', -9.2, -75.0), ('PF', -17.7, -149.4),
    ('PG', -6.3, 143.9), ('PH', 12.9, 121.8), ('PK', 30.4, 69.3), ('PL', 51.9, 19.1),
    ('PM', 46.9, -56.3), ('PN', -24.7, -127.4), ('PR', 18.2, -66.6), ('PS', 31.9, 35.2),
    ('PT', 39.4, -8.2), ('PW', 7.5, 134.6), ('PY', -23.4, -58.4), ('QA', 25.4, 51.2),
    ('RE', -21.1, 55.5), ('RO', 45.9, 25.0), ('RS', 44.0, 21.0), ('RU', 61.5, 105.3),
    ('RW', -1.9, 29.9), ('SA', 23.9, 45.1), ('SB', -9.6, 160.2), ('SC', -4.7, 55.5),
    ('SD', 12.9, 30.2), ('SE', 60.1, 18.6), ('SG', 1.4, 103.8), ('SH', -15.9, -5.7),
    ('SI', 46.2, 15.0), ('SJ', 77.6, 23.7), ('SK', 48.7, 19.7), ('SL', 8.5, -11.8),
    ('SM', 43.9, 12.5), ('SN', 14.5, -14.5), ('SO', 5.2, 46.2), ('SR', 3.9, -56.0),
    ('SS', 6.9, 31.3), ('ST', 0.2, 6.6), ('SV', 13.8, -88.9), ('SX', 18.0, -63.1),
    ('SY', 34.8, 39.0), ('SZ', -26.5, 31.5), ('TC', 21.7, -71.8), ('TD', 15.5, 18.7),
    ('TF', -49.3, 69.3), ('TG', 8.6, 0.8), ('TH', 15.9, 101.0), ('TJ', 38.9, 71.3),
    ('TK', -9.2, -171.8), ('TL', -8.9, 125.7), ('TM', 39.0, 59.6), ('TN', 33.9, 9.5),
    ('TO', -21.2, -175.2), ('TR', 39.0, 35.2), ('TT', 10.7, -61.2), ('TV', -7.1, 177.6),
    ('TW', 23.7, 121.0), ('TZ', -6.4, 34.9), ('UA', 48.4, 31.2), ('UG', 1.4, 32.3),
    ('UM', 19.3, 166.6), ('US', 37.1, -95.7), ('UY', -32.5, -55.8), ('UZ', 41.4, 64.6),
    ('VA', 41.9, 12.5), ('VC', 13.3, -61.2), ('VE', 6.4, -66.6), ('VG', 18.4, -64.6),
    ('VI', 18.3, -64.9), ('VN', 14.1, 108.3), ('VU', -15.4, 166.9), ('WF', -13.8, -177.2),
    ('WS', -13.8, -172.1), ('XK', 42.6, 20.9), ('YE', 15.6, 48.5), ('YT', -12.8, 45.2),
    ('ZA', -30.6, 22.9), ('ZM', -13.1, 27.8), ('ZW', -19.0, 29.2);

CREATE VIEW ato.located_logins AS
SELECT l.id, l.user_id, l.ip_address, l.country_code, l.occurred_at, l.outcome,
       coalesce(l.latitude, c.latitude) AS lat, coalesce(l.longitude, c.longitude) AS lon,
       l.latitude IS NULL OR l.longitude IS NULL AS approximate
  FROM ato.login_events l
  LEFT JOIN ato.country_centroids c ON c.country_code = l.country_code
 WHERE (l.latitude IS NOT NULL AND l.longitude IS NOT NULL) OR c.country_code IS NOT NULL;
COMMENT ON VIEW ato.located_logins IS
    'Login events with a place: their own coordinates, or their country''s centre (approximate); what ato.impossible_travel() and ato.account_last_logins measure distances between';

CREATE FUNCTION ato.impossible_travel(
    since         timestamptz      DEFAULT now() - interval '24 hours',
    max_speed_kmh double precision DEFAULT 900,
    min_distance_km double precision DEFAULT 500,
    lookback      interval         DEFAULT interval '24 hours')
RETURNS TABLE (user_id text, from_ip inet, from_country text, from_at timestamptz,
               to_ip inet, to_country text, to_at timestamptz,
               distance_km double precision, speed_kmh double precision, approximate boolean)
AS 'MODULE_PATHNAME', 'ato_impossible_travel'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.impossible_travel(timestamptz, double precision, double precision, interval) IS
    'Consecutive successful logins of an account, the later one since then (the earlier up to lookback before), at least min_distance_km apart and faster than max_speed_kmh, into a country the account had not logged in from before since (so that VPN and carrier hops between its usual places stay quiet); approximate when a country centre stood in for coordinates';
REVOKE ALL ON FUNCTION ato.impossible_travel(timestamptz, double precision, double precision, interval) FROM PUBLIC;

-- Two detections over what an identity provider tells (src/import's metadata
-- layout, install/sections/11_import.sql): plain SQL over the event store.
CREATE FUNCTION ato.provider_flagged_logins(since timestamptz DEFAULT now() - interval '1 hour')
RETURNS TABLE (user_id text, occurred_at timestamptz, ip_address inet, provider text,
               risk_level text, proxy boolean, anonymizer boolean, threat_suspected boolean, event_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF since IS NULL THEN
        RAISE EXCEPTION 'ato.provider_flagged_logins: since must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Give the start of the window, for example now() - interval ''1 hour''.';
    END IF;
    RETURN QUERY
    SELECT e.user_id, e.occurred_at, e.ip_address, e.metadata ->> 'provider',
           upper(e.metadata #>> '{risk,level}'),
           (e.metadata #>> '{risk,proxy}')::boolean,
           (e.metadata #>> '{risk,anonymizer}')::boolean,
           (e.metadata #>> '{risk,threat_suspected}')::boolean,
           e.id
      FROM ato.login_events e
     WHERE e.occurred_at >= since AND e.outcome = 'success' AND e.metadata ? 'risk'
       AND (upper(e.metadata #>> '{risk,level}') = 'HIGH'
            OR e.metadata #>> '{risk,proxy}' = 'true'
            OR e.metadata #>> '{risk,anonymizer}' = 'true'
            OR e.metadata #>> '{risk,threat_suspected}' = 'true')
     ORDER BY e.occurred_at, e.id;
END;
$$;
COMMENT ON FUNCTION ato.provider_flagged_logins(timestamptz) IS
    'Successful logins since then that the identity provider itself flagged: risk level high (Okta debugData risk, Entra riskLevelDuringSignIn), an anonymising proxy (Okta securityContext.isProxy, Entra anonymizedIPAddress) or a suspected threat (Okta threatSuspected)';
REVOKE ALL ON FUNCTION ato.provider_flagged_logins(timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.session_hijacks(since timestamptz DEFAULT now() - interval '1 hour')
RETURNS TABLE (session_id text, user_id text, networks bigint, countries text[], asns bigint[],
               ips inet[], first_seen timestamptz, last_seen timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF since IS NULL THEN
        RAISE EXCEPTION 'ato.session_hijacks: since must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Give the start of the window, for example now() - interval ''1 hour''.';
    END IF;
    -- a session's network is its ASN where known, else its country: one
    -- session from two of them at once is a stolen cookie or token
    RETURN QUERY
    SELECT s.session_id, min(s.user_id), count(DISTINCT s.network),
           array_agg(DISTINCT s.country_code ORDER BY s.country_code) FILTER (WHERE s.country_code IS NOT NULL),
           array_agg(DISTINCT s.asn ORDER BY s.asn) FILTER (WHERE s.asn IS NOT NULL),
           array_agg(DISTINCT s.ip_address ORDER BY s.ip_address),
           min(s.occurred_at), max(s.occurred_at)
      FROM (SELECT e.session_id, e.user_id, e.ip_address, e.country_code, e.asn, e.occurred_at,
                   coalesce('AS' || e.asn, e.country_code) AS network
              FROM ato.login_events e
             WHERE e.occurred_at >= since AND e.session_id IS NOT NULL AND e.outcome = 'success'
            UNION ALL
            SELECT a.session_id, a.actor_id, a.ip_address, a.country_code, a.asn, a.occurred_at,
                   coalesce('AS' || a.asn, a.country_code)
              FROM ato.audit_events a
             WHERE a.occurred_at >= since AND a.session_id IS NOT NULL) s
     WHERE s.network IS NOT NULL
     GROUP BY s.session_id
    HAVING count(DISTINCT s.network) > 1
     ORDER BY min(s.occurred_at), s.session_id;
END;
$$;
COMMENT ON FUNCTION ato.session_hijacks(timestamptz) IS
    'Sessions (the identity provider''s session id: Okta externalSessionId, Entra sessionId) used since then from more than one network (its ASN, else its country): a stolen session cookie or token';
REVOKE ALL ON FUNCTION ato.session_hijacks(timestamptz) FROM PUBLIC;

-- MFA fatigue (push bombing, MITRE ATT&CK T1621): an attacker who has the
-- password asks for second factors until the owner, worn down, approves one.
-- The prompts are what the import records as metadata's mfa.challenge (sent,
-- denied, approved; see 11_import.sql), which an application's own events may
-- carry too.  A row is an approval (an approved challenge, or any successful
-- login) after at least min_denials prompts that were not approved within
-- denial_window before it and since the account's previous approval: the
-- denied ones (denied, failed, timed out), or the prompts sent but never
-- answered (all sent but the approved one), whichever is more.
-- Defaults: 3 in 10 minutes.  Elastic's rule "Potential Abuse of Repeated MFA
-- Push Notifications" raises on two denied Okta pushes then a sign-in within
-- 10 minutes, its hunting query "Rapid MFA Deny Push Notifications" on more
-- than 5 denials in 10 minutes without an approval, Splunk's "Azure AD
-- Multiple Denied MFA Requests For User" on more than 9 in 10 minutes
-- without one; an approval after 3 is the middle ground, one more than an
-- owner's mistyped code and a retry.
CREATE FUNCTION ato.mfa_fatigue_logins(
    since         timestamptz DEFAULT now() - interval '1 hour',
    min_denials   integer     DEFAULT 3,
    denial_window interval    DEFAULT interval '10 minutes')
RETURNS TABLE (user_id text, approved_at timestamptz, approval text, ip_address inet, denials bigint,
               unanswered bigint, first_prompt timestamptz, last_prompt timestamptz, prompt_ips inet[],
               provider text, event_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF since IS NULL OR min_denials IS NULL OR denial_window IS NULL THEN
        RAISE EXCEPTION 'ato.mfa_fatigue_logins: since, min_denials and denial_window must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Leave out an argument to keep its default: min_denials 3, denial_window interval ''10 minutes''.';
    END IF;
    IF NOT isfinite(since) THEN
        RAISE EXCEPTION 'ato.mfa_fatigue_logins: since must be a finite time'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the start of the window, for example now() - interval ''1 hour''.';
    END IF;
    IF min_denials < 1 THEN
        RAISE EXCEPTION 'ato.mfa_fatigue_logins: min_denials must be at least 1'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a whole number of at least 1.';
    END IF;
    IF denial_window <= interval '0' OR denial_window > interval '1 day' THEN
        RAISE EXCEPTION 'ato.mfa_fatigue_logins: denial_window must be more than 0 and at most a day'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a length of time such as interval ''10 minutes''.';
    END IF;
    RETURN QUERY
    WITH prompts AS (
        SELECT a.actor_id AS user_id, a.occurred_at, a.id, a.ip_address, a.event_type,
               a.metadata #>> '{mfa,challenge}' AS challenge, a.metadata ->> 'provider' AS provider
          FROM ato.audit_events a
         WHERE a.occurred_at >= since - denial_window AND a.metadata #>> '{mfa,challenge}' IS NOT NULL
        UNION ALL
        SELECT l.user_id, l.occurred_at, l.id, l.ip_address, coalesce(l.metadata ->> 'event_type', 'login'),
               CASE WHEN l.outcome = 'success' THEN 'approved' ELSE l.metadata #>> '{mfa,challenge}' END,
               l.metadata ->> 'provider'
          FROM ato.login_events l
         WHERE l.occurred_at >= since - denial_window
           AND (l.outcome = 'success' OR l.metadata #>> '{mfa,challenge}' IS NOT NULL)),
    -- the account's approvals so far number its runs of prompts: a run ends
    -- in its approval, if it has one yet (the sort and the window functions
    -- are one pass each: no prompt is read again per approval)
    runs AS (
        SELECT p.*, count(*) FILTER (WHERE p.challenge = 'approved')
                        OVER (PARTITION BY p.user_id ORDER BY p.occurred_at, p.challenge = 'approved', p.id
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS run
          FROM prompts p
         WHERE p.challenge IN ('sent', 'denied', 'approved')),
    closed AS (
        SELECT r.*, max(r.occurred_at) FILTER (WHERE r.challenge = 'approved')
                        OVER (PARTITION BY r.user_id, r.run) AS run_approved_at
          FROM runs r),
    found AS (
        SELECT c.user_id, c.run_approved_at,
               (array_agg(c.event_type) FILTER (WHERE c.challenge = 'approved'))[1] AS approval,
               (array_agg(c.ip_address) FILTER (WHERE c.challenge = 'approved'))[1] AS approval_ip,
               (array_agg(c.provider) FILTER (WHERE c.challenge = 'approved'))[1] AS approval_provider,
               (array_agg(c.id) FILTER (WHERE c.challenge = 'approved'))[1] AS approval_id,
               count(*) FILTER (WHERE c.challenge = 'denied' AND c.occurred_at > c.run_approved_at - denial_window) AS n_denied,
               count(*) FILTER (WHERE c.challenge = 'sent' AND c.occurred_at > c.run_approved_at - denial_window) AS n_sent,
               min(c.occurred_at) FILTER (WHERE c.challenge <> 'approved' AND c.occurred_at > c.run_approved_at - denial_window) AS first_at,
               max(c.occurred_at) FILTER (WHERE c.challenge <> 'approved' AND c.occurred_at > c.run_approved_at - denial_window) AS last_at,
               array_agg(DISTINCT c.ip_address ORDER BY c.ip_address)
                   FILTER (WHERE c.challenge <> 'approved' AND c.occurred_at > c.run_approved_at - denial_window
                             AND c.ip_address IS NOT NULL) AS ips
          FROM closed c
         WHERE c.run_approved_at >= since
         GROUP BY c.user_id, c.run, c.run_approved_at)
    SELECT f.user_id, f.run_approved_at, f.approval, f.approval_ip, f.n_denied, greatest(f.n_sent - 1, 0),
           f.first_at, f.last_at, f.ips, f.approval_provider, f.approval_id
      FROM found f
     WHERE greatest(f.n_denied, f.n_sent - 1) >= min_denials
     ORDER BY f.run_approved_at, f.approval_id;
END;
$$;
COMMENT ON FUNCTION ato.mfa_fatigue_logins(timestamptz, integer, interval) IS
    'MFA fatigue (push bombing): approvals since then (an approved second factor or a successful login) after at least min_denials second-factor prompts not approved within denial_window before and since the previous approval (denied, failed or timed out, or sent and never answered; metadata mfa.challenge as ato.import_events() records it). Defaults 3 in 10 minutes, after Elastic''s Okta push rules (2 denials then a sign-in in 10 minutes; more than 5 denials in 10 minutes) and Splunk''s Azure AD rule (more than 9 in 10 minutes)';
REVOKE ALL ON FUNCTION ato.mfa_fatigue_logins(timestamptz, integer, interval) FROM PUBLIC;
