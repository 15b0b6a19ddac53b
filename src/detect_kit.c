/*
 * detect_kit.c
 *     The rest of the detection kit, the questions the always-on rules ask
 *     as well as a responder: ato.credential_stuffing(),
 *     ato.password_spray(), ato.failed_login_bursts(),
 *     ato.listed_network_logins(), ato.persistence_changes(),
 *     ato.related_accounts() and ato.impossible_travel().  Each checks its
 *     arguments and runs one query through src/detect.c.  Beside the three
 *     whose rows are about sources rather than accounts, the shapes that
 *     compose across shards (ato_response_proxy adds them up):
 *     ato.credential_stuffing_counts(), ato.password_spray_counts(), and
 *     ato.related_accounts_seen(), ato.user_agent_accounts() and
 *     ato.related_accounts_to().
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/timestamp.h"

#include "detect.h"

/* ---------------------------------------------------------------------
 * ato.credential_stuffing(since, min_attempts, max_success_rate)
 * ---------------------------------------------------------------------
 */

/*
 * $1 since, $2 min_attempts, $3 max_success_rate.  Login attempts grouped
 * three ways: by address, by network (IPv4 /24, IPv6 /48) and by autonomous
 * system, each with the account first, so that the distinct accounts are
 * counted by hashing instead of a sort per source.  Three passes over the
 * window rather than one with GROUPING SETS: the planner sizes each hash
 * table apart, and with the three together it sorted instead (by account,
 * in the database's collation) as soon as the window looked large.
 */
#define STUFFING_ATTEMPTS \
"      FROM ato.login_events WHERE occurred_at >= $1 AND ip_address IS NOT NULL"

#define STUFFING_PREFIX \
"network(set_masklen(ip_address, CASE WHEN family(ip_address) = 4 THEN 24 ELSE 48 END))"

/* The sources' counts, as CTE g: every source of the window. */
#define STUFFING_SOURCES \
"WITH per_account AS (" \
"    SELECT 'address' AS source_kind, host(ip_address) AS source," \
"           count(*) AS attempts, count(*) FILTER (WHERE outcome = 'success') AS successes" \
STUFFING_ATTEMPTS \
"     GROUP BY ip_address, user_id" \
"    UNION ALL" \
"    SELECT 'network', " STUFFING_PREFIX "::text, count(*), count(*) FILTER (WHERE outcome = 'success')" \
STUFFING_ATTEMPTS \
"     GROUP BY " STUFFING_PREFIX ", user_id" \
"    UNION ALL" \
"    SELECT 'asn', 'AS' || asn, count(*), count(*) FILTER (WHERE outcome = 'success')" \
STUFFING_ATTEMPTS " AND asn IS NOT NULL" \
"     GROUP BY asn, user_id)," \
" g AS (" \
"    SELECT source_kind, source, sum(attempts)::bigint AS attempts, sum(successes)::bigint AS successes," \
"           count(*) AS accounts" \
"      FROM per_account GROUP BY source_kind, source)"

static const char credential_stuffing_sql[] =
STUFFING_SOURCES
"SELECT source_kind, source, attempts, successes, successes::float8 / attempts AS success_rate, accounts,"
"       successes::float8 / attempts <= $3 AS suspicious"
"  FROM g WHERE attempts >= $2"
" ORDER BY attempts DESC, source_kind, source";

PG_FUNCTION_INFO_V1(ato_credential_stuffing);

Datum
ato_credential_stuffing(PG_FUNCTION_ARGS)
{
	const char *function = "ato.credential_stuffing";
	DetectQuery query = {function, credential_stuffing_sql};

	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since_arg(fcinfo, 0, function)), false);
	detect_arg(&query, INT4OID, Int32GetDatum(count_arg(fcinfo, 1, function, "min_attempts")), false);
	detect_arg(&query, FLOAT8OID,
			   Float8GetDatum(number_arg(fcinfo, 2, function, "max_success_rate", 0, 1)), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/*
 * ato.credential_stuffing_counts(since, min_attempts, sources): $1 since,
 * $2 min_attempts, $3 the sources to count ('<kind> <source>', as the rule
 * names its findings), NULL for every one.  This shard's attempts,
 * successes and accounts per source and no rate: an account's logins are
 * all on its shard, so the counts of the shards add up to one node's.
 */
static const char credential_stuffing_counts_sql[] =
STUFFING_SOURCES
"SELECT source_kind, source, attempts, successes, accounts"
"  FROM g WHERE attempts >= $2 AND ($3::text[] IS NULL OR source_kind || ' ' || source = ANY ($3::text[]))"
" ORDER BY source_kind, source";

PG_FUNCTION_INFO_V1(ato_credential_stuffing_counts);

Datum
ato_credential_stuffing_counts(PG_FUNCTION_ARGS)
{
	const char *function = "ato.credential_stuffing_counts";
	DetectQuery query = {function, credential_stuffing_counts_sql};
	Datum		sources = PG_ARGISNULL(2) ? (Datum) 0 : PointerGetDatum(array_arg(fcinfo, 2, function, "sources",
									   "Give sources as '<kind> <source>', for example '{address 198.51.100.7}', or NULL for every one."));

	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since_arg(fcinfo, 0, function)), false);
	detect_arg(&query, INT4OID, Int32GetDatum(count_arg(fcinfo, 1, function, "min_attempts")), false);
	detect_arg(&query, TEXTARRAYOID, sources, PG_ARGISNULL(2));
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/* ---------------------------------------------------------------------
 * ato.password_spray(since, min_accounts, max_attempts_per_account)
 * ---------------------------------------------------------------------
 */

/*
 * $1 since, $2 min_accounts, $3 max_attempts_per_account.  The attempts are
 * grouped per address and account first, so that the accounts of an address
 * are counted by hashing rather than by sorting its attempts.
 */
/* Per address and account, as CTE per_account; only: a further condition on the attempts. */
#define SPRAY_PER_ACCOUNT(only) \
"WITH per_account AS (" \
"    SELECT ip_address, count(*) AS attempts, count(*) FILTER (WHERE outcome = 'failure') AS failures," \
"           count(*) FILTER (WHERE outcome = 'success') AS successes," \
"           min(occurred_at) AS first_attempt, max(occurred_at) AS last_attempt" \
"      FROM ato.login_events" \
"     WHERE occurred_at >= $1 AND ip_address IS NOT NULL" only \
"     GROUP BY ip_address, user_id)"

static const char password_spray_sql[] =
SPRAY_PER_ACCOUNT("")
"SELECT ip_address, count(*) FILTER (WHERE failures > 0) AS accounts, sum(failures)::bigint AS failures,"
"       sum(successes)::bigint AS successes, sum(attempts)::float8 / count(*) AS attempts_per_account,"
"       min(first_attempt) AS first_attempt, max(last_attempt) AS last_attempt"
"  FROM per_account"
" GROUP BY ip_address"
" HAVING count(*) FILTER (WHERE failures > 0) >= $2 AND sum(attempts)::float8 / count(*) <= $3"
" ORDER BY accounts DESC, ip_address";

PG_FUNCTION_INFO_V1(ato_password_spray);

Datum
ato_password_spray(PG_FUNCTION_ARGS)
{
	const char *function = "ato.password_spray";
	DetectQuery query = {function, password_spray_sql};

	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since_arg(fcinfo, 0, function)), false);
	detect_arg(&query, INT4OID, Int32GetDatum(count_arg(fcinfo, 1, function, "min_accounts")), false);
	detect_arg(&query, FLOAT8OID,
			   Float8GetDatum(number_arg(fcinfo, 2, function, "max_attempts_per_account", 1, 1e9)), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/*
 * ato.password_spray_counts(since, min_accounts, addresses): $1 since, $2
 * min_accounts (0: every address), $3 only these addresses, or NULL.  This
 * shard's counts per address, each a sum over its accounts: the accounts
 * that failed and those tried at all, attempts, failures, successes, and
 * the first and last attempt.  The shards' accounts are disjoint, so the
 * sums and the extremes of the shards are one node's, and so is the rate
 * attempts / accounts_tried.
 */
static const char password_spray_counts_sql[] =
SPRAY_PER_ACCOUNT(" AND ($3::inet[] IS NULL OR ip_address = ANY ($3::inet[]))")
"SELECT ip_address, count(*) FILTER (WHERE failures > 0) AS accounts, count(*) AS accounts_tried,"
"       sum(attempts)::bigint AS attempts, sum(failures)::bigint AS failures,"
"       sum(successes)::bigint AS successes, min(first_attempt) AS first_attempt, max(last_attempt) AS last_attempt"
"  FROM per_account"
" GROUP BY ip_address"
" HAVING count(*) FILTER (WHERE failures > 0) >= $2"
" ORDER BY ip_address";

PG_FUNCTION_INFO_V1(ato_password_spray_counts);

Datum
ato_password_spray_counts(PG_FUNCTION_ARGS)
{
	const char *function = "ato.password_spray_counts";
	DetectQuery query = {function, password_spray_counts_sql};
	int32		min_accounts;
	Datum		addresses = PG_ARGISNULL(2) ? (Datum) 0 : PointerGetDatum(array_arg(fcinfo, 2, function, "addresses",
										 "Give the addresses to count, or NULL for every one."));

	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since_arg(fcinfo, 0, function)), false);
	require_arg(fcinfo, 1, function, "min_accounts", "Give a whole number, 0 for every address.");
	min_accounts = PG_GETARG_INT32(1);
	if (min_accounts < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: min_accounts must not be negative", function),
				 errhint("Give a whole number, 0 for every address.")));
	detect_arg(&query, INT4OID, Int32GetDatum(min_accounts), false);
	detect_arg(&query, INETARRAYOID, addresses, PG_ARGISNULL(2));
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/* ---------------------------------------------------------------------
 * ato.failed_login_bursts(since, min_failures, burst_window)
 * ---------------------------------------------------------------------
 */

/*
 * $1 since, $2 min_failures, $3 burst_window: accounts with at least
 * min_failures failed logins within some burst_window, and the first
 * successful login after their first failure, if any.  Only the failures
 * are sorted; the successes are read again for the accounts found, if any.
 */
static const char failed_login_bursts_sql[] =
"WITH f AS ("
"    SELECT user_id, ip_address, occurred_at,"
"           count(*) OVER (PARTITION BY user_id COLLATE \"C\" ORDER BY occurred_at"
"                          RANGE BETWEEN $3 PRECEDING AND CURRENT ROW) AS in_burst"
"      FROM ato.login_events WHERE occurred_at >= $1 AND outcome = 'failure'),"
" b AS ("
"    SELECT user_id, count(*) AS failures, max(in_burst) AS burst, count(DISTINCT ip_address) AS sources,"
"           min(occurred_at) AS first_failure, max(occurred_at) AS last_failure"
"      FROM f GROUP BY user_id HAVING max(in_burst) >= $2),"
" s AS ("
"    SELECT w.user_id, min(w.occurred_at) AS later_success"
"      FROM ato.login_events w JOIN b ON b.user_id = w.user_id"
"     WHERE w.occurred_at >= $1 AND w.outcome = 'success' AND w.occurred_at >= b.first_failure"
"     GROUP BY w.user_id)"
"SELECT b.user_id, b.failures, b.burst, b.sources, b.first_failure, b.last_failure, s.later_success"
"  FROM b LEFT JOIN s ON s.user_id = b.user_id"
" ORDER BY b.burst DESC, b.user_id";

PG_FUNCTION_INFO_V1(ato_failed_login_bursts);

Datum
ato_failed_login_bursts(PG_FUNCTION_ARGS)
{
	const char *function = "ato.failed_login_bursts";
	DetectQuery query = {function, failed_login_bursts_sql};

	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since_arg(fcinfo, 0, function)), false);
	detect_arg(&query, INT4OID, Int32GetDatum(count_arg(fcinfo, 1, function, "min_failures")), false);
	detect_arg(&query, INTERVALOID,
			   IntervalPGetDatum(positive_interval_arg(fcinfo, 2, function, "burst_window")), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/* ---------------------------------------------------------------------
 * ato.listed_network_logins(since, labels)
 * ---------------------------------------------------------------------
 */

/*
 * $1 since, $2 labels (NULL: all).  A network counts when it was not
 * expired at the time of the login.  With no network listed, the window is
 * not read at all.
 */
static const char listed_network_logins_sql[] =
"SELECT w.user_id, w.ip_address, w.occurred_at, n.network, n.label, n.source"
"  FROM ato.login_events w"
"  JOIN ato.listed_networks n ON n.network >>= w.ip_address"
" WHERE EXISTS (SELECT FROM ato.listed_networks)"
"   AND w.occurred_at >= $1 AND w.outcome = 'success'"
"   AND (n.expires_at IS NULL OR n.expires_at > w.occurred_at)"
"   AND ($2::text[] IS NULL OR n.label = ANY ($2))"
" ORDER BY w.occurred_at, w.user_id, n.network, n.label";

PG_FUNCTION_INFO_V1(ato_listed_network_logins);

Datum
ato_listed_network_logins(PG_FUNCTION_ARGS)
{
	const char *function = "ato.listed_network_logins";
	DetectQuery query = {function, listed_network_logins_sql};
	Datum		labels = (Datum) 0;
	TimestampTz since = since_arg(fcinfo, 0, function);

	if (!PG_ARGISNULL(1))
		labels = PointerGetDatum(array_arg(fcinfo, 1, function, "labels",
										   "Give the labels of ato.listed_networks to match, or NULL for all."));
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since), false);
	detect_arg(&query, TEXTARRAYOID, labels, PG_ARGISNULL(1));
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/* ---------------------------------------------------------------------
 * ato.persistence_changes(user_ids, since)
 * ---------------------------------------------------------------------
 */

/*
 * $1 user_ids (NULL: every account), $2 since.  Each audit event is
 * classified by the most specific pattern of ato.persistence_event_types
 * it matches.  A failed one (a denied grant, an identity provider's DENY)
 * gave nobody a way back in and is left out.
 */
static const char persistence_changes_sql[] =
"SELECT DISTINCT ON (a.occurred_at, a.id)"
"       a.actor_id, p.category, a.event_type, a.occurred_at, a.ip_address, a.country_code,"
"       a.target_type, a.target_id"
"  FROM ato.audit_events a"
"  JOIN ato.persistence_event_types p ON a.event_type LIKE p.pattern"
" WHERE a.occurred_at >= $2 AND ($1::text[] IS NULL OR a.actor_id = ANY ($1))"
"   AND a.outcome IS DISTINCT FROM 'failure'"
" ORDER BY a.occurred_at, a.id, length(p.pattern) DESC, p.pattern";

PG_FUNCTION_INFO_V1(ato_persistence_changes);

Datum
ato_persistence_changes(PG_FUNCTION_ARGS)
{
	const char *function = "ato.persistence_changes";
	DetectQuery query = {function, persistence_changes_sql};
	Datum		user_ids = (Datum) 0;
	TimestampTz since;

	if (!PG_ARGISNULL(0))
		user_ids = PointerGetDatum(array_arg(fcinfo, 0, function, "user_ids",
											 "Give the accounts' ids, or NULL for every account."));
	since = since_arg(fcinfo, 1, function);
	detect_arg(&query, TEXTARRAYOID, user_ids, PG_ARGISNULL(0));
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/* ---------------------------------------------------------------------
 * ato.related_accounts(user_ids, since, rare_user_agent_accounts)
 * ---------------------------------------------------------------------
 */

/*
 * $1 user_ids, $2 since, $3 rare_user_agent_accounts.  Other accounts with
 * successful logins from an address the given accounts used, or with a user
 * agent they used that at most $3 accounts used in the window (a common
 * browser string relates nobody).
 */
/* The successful logins of the window, as CTE w ($2 since). */
#define RELATED_WINDOW \
" w AS (" \
"    SELECT id, user_id, ip_address, user_agent, occurred_at FROM ato.login_events" \
"     WHERE occurred_at >= $2 AND outcome = 'success')"

/*
 * From CTEs given (the accounts), w and seen (given_id, ip_address and a rare
 * user_agent or NULL): the other accounts of w that share an address or a
 * user agent with seen, one row each.
 */
#define RELATED_TAIL \
" links AS (" \
"    SELECT o.id, o.user_id, o.occurred_at, s.given_id, o.ip_address AS shared_address," \
"           NULL::text AS shared_user_agent" \
"      FROM w o JOIN seen s ON o.ip_address = s.ip_address" \
"    UNION ALL" \
"    SELECT o.id, o.user_id, o.occurred_at, s.given_id, NULL, o.user_agent" \
"      FROM w o JOIN seen s ON o.user_agent = s.user_agent)," \
" others AS (SELECT * FROM links WHERE user_id NOT IN (SELECT u FROM given))" \
"SELECT user_id," \
"       coalesce(array_agg(DISTINCT shared_address ORDER BY shared_address)" \
"                FILTER (WHERE shared_address IS NOT NULL), '{}') AS shared_addresses," \
"       coalesce(array_agg(DISTINCT shared_user_agent ORDER BY shared_user_agent)" \
"                FILTER (WHERE shared_user_agent IS NOT NULL), '{}') AS shared_user_agents," \
"       array_agg(DISTINCT given_id ORDER BY given_id) AS related_to," \
"       count(DISTINCT id) AS logins, min(occurred_at) AS first_login, max(occurred_at) AS last_login" \
"  FROM others GROUP BY user_id" \
" ORDER BY cardinality(array_agg(DISTINCT given_id)) DESC, user_id"

#define RELATED_GIVEN \
"WITH given AS (SELECT DISTINCT u FROM unnest($1::text[]) u WHERE u IS NOT NULL),"

static const char related_accounts_sql[] =
RELATED_GIVEN
RELATED_WINDOW ","
" rare_agents AS ("
"    SELECT user_agent FROM w WHERE user_agent IS NOT NULL"
"     GROUP BY user_agent HAVING count(DISTINCT user_id) <= $3),"
" seen AS ("
"    SELECT DISTINCT w.user_id AS given_id, w.ip_address,"
"           CASE WHEN w.user_agent IN (SELECT user_agent FROM rare_agents) THEN w.user_agent END AS user_agent"
"      FROM w JOIN given ON given.u = w.user_id),"
RELATED_TAIL;

PG_FUNCTION_INFO_V1(ato_related_accounts);

Datum
ato_related_accounts(PG_FUNCTION_ARGS)
{
	const char *function = "ato.related_accounts";
	DetectQuery query = {function, related_accounts_sql};
	ArrayType  *user_ids = array_arg(fcinfo, 0, function, "user_ids",
									 "Give the ids of the compromised accounts.");

	detect_arg(&query, TEXTARRAYOID, PointerGetDatum(user_ids), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since_arg(fcinfo, 1, function)), false);
	detect_arg(&query, INT4OID,
			   Int32GetDatum(count_arg(fcinfo, 2, function, "rare_user_agent_accounts")), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/*
 * Across shards, related_accounts in three steps, each of which composes:
 * ato.related_accounts_seen(user_ids, since), the addresses and user agents
 * of the given accounts' successful logins on this shard;
 * ato.user_agent_accounts(user_agents, since), how many of this shard's
 * accounts used each agent (disjoint across shards: the proxy adds them up
 * and keeps the rare ones); ato.related_accounts_to(user_ids, since,
 * seen_ids, seen_addresses, seen_user_agents), this shard's accounts related
 * to what every shard saw, which are one node's rows for those accounts.
 */
static const char related_accounts_seen_sql[] =
RELATED_GIVEN
RELATED_WINDOW
"SELECT DISTINCT w.user_id AS given_id, w.ip_address, w.user_agent"
"  FROM w JOIN given ON given.u = w.user_id"
" ORDER BY 1, 2, 3";

PG_FUNCTION_INFO_V1(ato_related_accounts_seen);

Datum
ato_related_accounts_seen(PG_FUNCTION_ARGS)
{
	const char *function = "ato.related_accounts_seen";
	DetectQuery query = {function, related_accounts_seen_sql};
	ArrayType  *user_ids = array_arg(fcinfo, 0, function, "user_ids",
									 "Give the ids of the compromised accounts.");

	detect_arg(&query, TEXTARRAYOID, PointerGetDatum(user_ids), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since_arg(fcinfo, 1, function)), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}

static const char user_agent_accounts_sql[] =
"SELECT user_agent, count(DISTINCT user_id) AS accounts FROM ato.login_events"
" WHERE occurred_at >= $2 AND outcome = 'success' AND user_agent = ANY ($1::text[])"
" GROUP BY user_agent ORDER BY user_agent";

PG_FUNCTION_INFO_V1(ato_user_agent_accounts);

Datum
ato_user_agent_accounts(PG_FUNCTION_ARGS)
{
	const char *function = "ato.user_agent_accounts";
	DetectQuery query = {function, user_agent_accounts_sql};
	ArrayType  *agents = array_arg(fcinfo, 0, function, "user_agents",
								   "Give the user agents to count, for example those of ato.related_accounts_seen().");

	detect_arg(&query, TEXTARRAYOID, PointerGetDatum(agents), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since_arg(fcinfo, 1, function)), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}

static const char related_accounts_to_sql[] =
RELATED_GIVEN
RELATED_WINDOW ","
" seen AS ("
"    SELECT DISTINCT * FROM unnest($3::text[], $4::inet[], $5::text[]) s(given_id, ip_address, user_agent)),"
RELATED_TAIL;

PG_FUNCTION_INFO_V1(ato_related_accounts_to);

Datum
ato_related_accounts_to(PG_FUNCTION_ARGS)
{
	const char *function = "ato.related_accounts_to";
	const char *hint = "Pass the columns of what the shards saw, one element per row: given_id, ip_address and the rare user agent or NULL.";
	DetectQuery query = {function, related_accounts_to_sql};
	ArrayType  *user_ids = array_arg(fcinfo, 0, function, "user_ids",
									 "Give the ids of the compromised accounts.");
	ArrayType  *seen[3];
	static const char *const names[3] = {"seen_ids", "seen_addresses", "seen_user_agents"};
	int			n[3];
	int			i;

	detect_arg(&query, TEXTARRAYOID, PointerGetDatum(user_ids), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since_arg(fcinfo, 1, function)), false);
	for (i = 0; i < 3; i++)
	{
		seen[i] = array_arg(fcinfo, 2 + i, function, names[i], hint);
		n[i] = ArrayGetNItems(ARR_NDIM(seen[i]), ARR_DIMS(seen[i]));
	}
	if (n[0] != n[1] || n[0] != n[2])
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s: seen_ids, seen_addresses and seen_user_agents have %d, %d and %d elements",
						function, n[0], n[1], n[2]),
				 errhint("%s", hint)));
	detect_arg(&query, TEXTARRAYOID, PointerGetDatum(seen[0]), false);
	detect_arg(&query, INETARRAYOID, PointerGetDatum(seen[1]), false);
	detect_arg(&query, TEXTARRAYOID, PointerGetDatum(seen[2]), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/* ---------------------------------------------------------------------
 * ato.impossible_travel(since, max_speed_kmh, min_distance_km, lookback)
 * ---------------------------------------------------------------------
 */

/*
 * $1 since, $2 max_speed_kmh, $3 min_distance_km, $4 lookback, $5 where the
 * unsummarised stretch before since begins.  Each successful login is placed
 * at its GeoIP coordinates or, failing those, at its country's centre; each
 * is paired with the account's previous one, and a pair counts when it is
 * far enough, too fast, and leads into a country the account had not used
 * before since (read as in ato.new_country_logins()).  Great-circle
 * distance by the haversine formula on the mean earth radius.
 */
/* The successful logins with a place (see the view ato.located_logins). */
#define LOCATED_LOGINS \
"    SELECT l.id, l.user_id, l.ip_address, l.country_code, l.occurred_at, l.lat, l.lon, l.approximate" \
"      FROM ato.located_logins l" \
"     WHERE l.outcome = 'success'"

/* From the located logins w, each account's consecutive pairs that are too fast. */
#define TRAVEL_LEGS \
" pairs AS (" \
"    SELECT user_id," \
"           lag(ip_address) OVER u AS from_ip, lag(country_code) OVER u AS from_country," \
"           lag(occurred_at) OVER u AS from_at, lag(lat) OVER u AS from_lat, lag(lon) OVER u AS from_lon," \
"           lag(approximate) OVER u AS from_approximate," \
"           ip_address AS to_ip, country_code AS to_country, occurred_at AS to_at, lat, lon, approximate" \
"      FROM w WINDOW u AS (PARTITION BY user_id COLLATE \"C\" ORDER BY occurred_at, id))," \
" legs AS (" \
"    SELECT p.*," \
"           2 * 6371.0088 * asin(least(1, sqrt(sin(radians(lat - from_lat) / 2) ^ 2" \
"               + cos(radians(from_lat)) * cos(radians(lat)) * sin(radians(lon - from_lon) / 2) ^ 2))) AS distance_km," \
"           greatest(extract(epoch FROM to_at - from_at)::float8 / 3600, 1.0 / 3600) AS hours" \
"      FROM pairs p WHERE p.from_at IS NOT NULL AND p.to_at >= $1)" \
"SELECT g.user_id, g.from_ip, g.from_country, g.from_at, g.to_ip, g.to_country, g.to_at," \
"       g.distance_km, g.distance_km / g.hours AS speed_kmh, g.from_approximate OR g.approximate" \
"  FROM legs g" \
" WHERE g.distance_km >= $3 AND g.distance_km / g.hours > $2" \
"   AND " UNFAMILIAR_COUNTRY("g.user_id", "g.to_country", "$1", "$5") \
" ORDER BY g.to_at, g.user_id"

/*
 * $1 since, $2 max_speed_kmh, $3 min_distance_km, $4 lookback, $5 where the
 * unsummarised stretch before since begins.  Reads every located login from
 * since - lookback on, to find each window login's predecessor.
 */
static const char impossible_travel_sql[] =
"WITH w AS (" LOCATED_LOGINS " AND l.occurred_at >= $1 - $4)," TRAVEL_LEGS;

/*
 * The same when the summaries are complete up to their watermark $5 and
 * since is at or after it (the detection worker's case).  A leg counts only
 * when it leads into a country the account had not used before since, so
 * only accounts with such a login since since (or one with no known country,
 * which is never familiar) can have one: they are found first, and only
 * their logins are read and sorted.  The predecessor of each one's first
 * login from the watermark on is its latest located login before the
 * watermark, from ato.account_last_logins: the history before the watermark
 * is not read.  The legs into logins before since are dropped at the end.
 */
static const char impossible_travel_recent_sql[] =
"WITH destinations AS ("
"    SELECT DISTINCT w.user_id FROM ato.login_events w"
"     WHERE w.occurred_at >= $1 AND w.outcome = 'success'"
"       AND " UNFAMILIAR_COUNTRY("w.user_id", "w.country_code", "$1", "$5") "),"
" w AS ("
LOCATED_LOGINS " AND l.occurred_at >= $5 AND l.occurred_at >= $1 - $4"
"       AND l.user_id IN (SELECT d.user_id FROM destinations d)"
"    UNION ALL"
"    SELECT s.event_id, s.user_id, s.ip_address, s.country_code, s.occurred_at,"
"           s.latitude, s.longitude, s.approximate"
"      FROM ato.account_last_logins s"
"     WHERE s.user_id IN (SELECT d.user_id FROM destinations d) AND s.occurred_at >= $1 - $4),"
TRAVEL_LEGS;

PG_FUNCTION_INFO_V1(ato_impossible_travel);

Datum
ato_impossible_travel(PG_FUNCTION_ARGS)
{
	const char *function = "ato.impossible_travel";
	DetectQuery query = {function, impossible_travel_sql};
	TimestampTz since = since_arg(fcinfo, 0, function);
	float8		max_speed = number_arg(fcinfo, 1, function, "max_speed_kmh", 1, 1e6);
	float8		min_distance = number_arg(fcinfo, 2, function, "min_distance_km", 0, 20100);
	Interval   *lookback = positive_interval_arg(fcinfo, 3, function, "lookback");
	SummaryCoverage coverage = summary_coverage();
	TimestampTz summarised_to = coverage.until;

	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since), false);
	detect_arg(&query, FLOAT8OID, Float8GetDatum(max_speed), false);
	detect_arg(&query, FLOAT8OID, Float8GetDatum(min_distance), false);
	detect_arg(&query, INTERVALOID, IntervalPGetDatum(lookback), false);
	if (!coverage.late_days && !TIMESTAMP_IS_NOBEGIN(summarised_to) && since >= summarised_to)
	{
		query.sql = impossible_travel_recent_sql;
		detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(summarised_to), false);
	}
	else
		detect_arg(&query, TIMESTAMPTZOID,
				   TimestampTzGetDatum(unsummarised_from(&query, since, summarised_to)), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}
