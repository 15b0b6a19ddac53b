/*
 * detect_hunt.c
 *     The hunt's three questions of the design card, asked during an
 *     incident: ato.new_country_logins() (who logged in from a new country,
 *     and what did they change after), ato.cidr_scope() (which accounts did
 *     these networks get into) and ato.suspicious_action_counts() (what did
 *     these accounts do since).  Each checks its arguments and runs one
 *     query through src/detect.c, reading the recent summaries where they
 *     hold the window.
 */
#include "postgres.h"

#include <sys/socket.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/timestamp.h"

#include "detect.h"
#include "summary.h"

/* ---------------------------------------------------------------------
 * ato.new_country_logins(since, action_window, action_types)
 * ---------------------------------------------------------------------
 */

/*
 * $1 since, $2 action_window, $3 action_types, $4 the end of the summarised
 * stretch (the watermark, or the first late day if earlier), $5 where the
 * unsummarised stretch before since begins ($5 = $1: none), $6 where the
 * recent summaries take over from the event store (from $6 to $4).
 *
 * The window's successful logins before $4 are all summarised, so their
 * country is new exactly when the account's first success from it is in the
 * window.  From $6 on they are read from ato.recent_new_country_logins,
 * which holds just the logins of young pairs with their pair's first
 * success; before $6 (a window older than the recent summaries) in one pass
 * over the event store, hash-joined with the few pairs the summaries first
 * saw since $1 (an index range on first_success_at), never probed one by
 * one.  Those from $4 on (the last minutes, or the whole window when the
 * summaries lag behind it) are checked against the summaries and the
 * unsummarised stretch, in one pass (a login without a country passes: it
 * is never familiar).  Logins without a country are always returned.  The
 * actions are counted per new login, from its account's audit events of
 * the given types in its action window (failed ones, such as a denied
 * change, are not actions taken): one probe of the (actor_id, occurred_at)
 * index each.  Written as a subquery, not a join, so that it stays that
 * whatever the statistics say: right after months are attached their
 * partitions have none, and a join was then planned as a loop over the
 * window's materialised audit events for every new login (1.8 s instead
 * of 20 ms for 6,000 new logins after a bulk load).
 */
static const char new_country_logins_sql[] =
"WITH new_logins AS ("
"    SELECT w.id, w.user_id, w.ip_address, w.country_code, w.occurred_at"
"      FROM ato.login_events w"
"      LEFT JOIN (SELECT k.user_id, k.country_code FROM ato.account_countries k"
"                  WHERE k.first_success_at >= $1) fresh"
"             ON fresh.user_id = w.user_id AND fresh.country_code = w.country_code"
"     WHERE w.occurred_at >= $1 AND w.occurred_at < $6 AND w.outcome = 'success'"
"       AND (w.country_code IS NULL OR fresh.user_id IS NOT NULL)"
"    UNION ALL"
"    SELECT r.event_id, r.user_id, r.ip_address, r.country_code, r.occurred_at"
"      FROM ato.recent_new_country_logins r"
"     WHERE r.occurred_at >= $6 AND r.occurred_at < $4"
"       AND (r.country_code IS NULL OR r.first_success_at >= $1)"
"    UNION ALL"
"    SELECT w.id, w.user_id, w.ip_address, w.country_code, w.occurred_at"
"      FROM ato.login_events w"
"     WHERE w.occurred_at >= greatest($1, $4) AND w.outcome = 'success'"
"       AND " UNFAMILIAR_COUNTRY("w.user_id", "w.country_code", "$1", "$5") ")"
"SELECT n.user_id, n.ip_address, n.country_code, n.occurred_at,"
"       (SELECT count(*) FROM ato.audit_events a"
"         WHERE a.actor_id = n.user_id"
"           AND a.occurred_at >= n.occurred_at AND a.occurred_at <= n.occurred_at + $2"
"           AND a.event_type = ANY ($3) AND a.outcome IS DISTINCT FROM 'failure')"
"  FROM new_logins n"
" ORDER BY n.occurred_at, n.user_id, n.id";

PG_FUNCTION_INFO_V1(ato_new_country_logins);

Datum
ato_new_country_logins(PG_FUNCTION_ARGS)
{
	const char *function = "ato.new_country_logins";
	DetectQuery query = {function, new_country_logins_sql};
	TimestampTz since = since_arg(fcinfo, 0, function);
	Interval   *action_window = positive_interval_arg(fcinfo, 1, function, "action_window");
	ArrayType  *action_types = array_arg(fcinfo, 2, function, "action_types",
										 "Give the audit event types to count, or '{}' to count none.");
	SummaryCoverage coverage = summary_coverage();

	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since), false);
	detect_arg(&query, INTERVALOID, IntervalPGetDatum(action_window), false);
	detect_arg(&query, TEXTARRAYOID, PointerGetDatum(action_types), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(coverage.until), false);
	detect_arg(&query, TIMESTAMPTZOID,
			   TimestampTzGetDatum(unsummarised_from(&query, since, coverage.until)), false);
	detect_arg(&query, TIMESTAMPTZOID,
			   TimestampTzGetDatum(recent_summaries_from(since, &coverage)), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/* ---------------------------------------------------------------------
 * ato.cidr_scope(cidrs, since)
 * ---------------------------------------------------------------------
 */

/*
 * $1 cidrs (disjoint: see disjoint_networks()), $2 since, $3 the end of the
 * summarised stretch, $4 where the summarised whole hours begin ($4 >= $3:
 * none).
 *
 * From $4 to $3 the logins come from ato.recent_address_logins, found by
 * address: one B-tree range per network (the host addresses from its first
 * to its last), rechecked with <<=; the networks being disjoint, no row is
 * found twice.  The rest of the window (up to the first whole hour, and from
 * $3 on) is read from the event store, and each login's address is looked up
 * by hash once per prefix length of the networks (family and length): its
 * network at that length is one of them or not.  That costs per login the
 * number of distinct lengths, where "<<= ANY" would cost the number of
 * networks; being disjoint, they match each login at most once.
 */
static const char cidr_scope_sql[] =
"WITH hits AS ("
"    SELECT b.user_id, b.ip_address, b.logins, b.first_login, b.last_login"
"      FROM unnest($1::cidr[]) c"
"      JOIN ato.recent_address_logins b"
"        ON b.ip_address >= c::inet"
"       AND b.ip_address <= set_masklen(broadcast(c), CASE family(c) WHEN 4 THEN 32 ELSE 128 END)"
"       AND b.ip_address <<= c"
"     WHERE b.hour >= $4 AND b.hour < $3"
"    UNION ALL"
"    SELECT w.user_id, w.ip_address, 1::bigint, w.occurred_at, w.occurred_at"
"      FROM ato.login_events w"
"     CROSS JOIN (SELECT DISTINCT family(c) AS family, masklen(c) AS bits FROM unnest($1::cidr[]) c) p"
"      JOIN unnest($1::cidr[]) n"
"        ON n = CASE WHEN family(w.ip_address) = p.family"
"                    THEN network(set_masklen(w.ip_address, p.bits)) END"
"     WHERE ((w.occurred_at >= $2 AND w.occurred_at < least($3, $4)) OR w.occurred_at >= greatest($2, $3))"
"       AND w.outcome = 'success'),"
" accounts AS ("
"    SELECT user_id, sum(logins)::bigint AS logins, min(first_login) AS first_login,"
"           max(last_login) AS last_login, array_agg(DISTINCT ip_address ORDER BY ip_address) AS ips"
"      FROM hits GROUP BY user_id)"
"SELECT c.user_id, c.logins, c.first_login, c.last_login, c.ips,"
"       coalesce((SELECT jsonb_object_agg(event_type, n ORDER BY event_type)"
"                   FROM (SELECT a.event_type, count(*) AS n FROM ato.audit_events a"
"                          WHERE a.actor_id = c.user_id AND a.occurred_at >= c.first_login"
"                          GROUP BY a.event_type) x), '{}'::jsonb)"
"  FROM accounts c"
" ORDER BY c.first_login, c.user_id";

/* The first whole UTC hour at or after t (finite t). */
static TimestampTz
hour_ceiling(TimestampTz t)
{
	TimestampTz hour = summary_time_floor(t, USECS_PER_HOUR);

	return hour == t ? t : hour + USECS_PER_HOUR;
}

/* Family, then address bytes, then prefix length: a network sorts before those it covers. */
static int
compare_networks(const void *a, const void *b)
{
	inet	   *na = DatumGetInetPP(*(const Datum *) a);
	inet	   *nb = DatumGetInetPP(*(const Datum *) b);
	int			cmp;

	if (ip_family(na) != ip_family(nb))
		return ip_family(na) < ip_family(nb) ? -1 : 1;
	cmp = memcmp(ip_addr(na), ip_addr(nb), ip_addrsize(na));
	if (cmp != 0)
		return cmp;
	return (ip_bits(na) > ip_bits(nb)) - (ip_bits(na) < ip_bits(nb));
}

/*
 * The networks of "cidrs" that no other one covers, sorted, without NULLs or
 * duplicates: the same addresses, each in exactly one network.  Lists of
 * threat intelligence repeat networks and name hosts inside them; every
 * network left out is one B-tree range less to search in the recent
 * summaries, and disjoint networks match a login at most once, so that no
 * answer needs to be made distinct.  After sorting, a network is covered
 * exactly when the last one kept covers it (the kept ones are disjoint, and
 * a covering network sorts before what it covers).
 */
static ArrayType *
disjoint_networks(ArrayType *cidrs)
{
	Datum	   *networks;
	bool	   *nulls;
	int			n;
	int			kept = 0;

	deconstruct_array(cidrs, CIDROID, -1, false, TYPALIGN_INT, &networks, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			networks[kept++] = networks[i];
	n = kept;
	kept = 0;
	qsort(networks, n, sizeof(Datum), compare_networks);
	for (int i = 0; i < n; i++)
	{
		inet	   *network = DatumGetInetPP(networks[i]);

		if (kept > 0)
		{
			inet	   *last = DatumGetInetPP(networks[kept - 1]);

			if (ip_family(last) == ip_family(network) && ip_bits(last) <= ip_bits(network) &&
				bitncmp(ip_addr(last), ip_addr(network), ip_bits(last)) == 0)
				continue;
		}
		networks[kept++] = networks[i];
	}
	return construct_array(networks, kept, CIDROID, -1, false, TYPALIGN_INT);
}

PG_FUNCTION_INFO_V1(ato_cidr_scope);

Datum
ato_cidr_scope(PG_FUNCTION_ARGS)
{
	const char *function = "ato.cidr_scope";
	DetectQuery query = {function, cidr_scope_sql};
	ArrayType  *cidrs = array_arg(fcinfo, 0, function, "cidrs",
								  "Give the attacker's networks, for example '{192.0.2.0/24, 2001:db8::/32}'.");
	TimestampTz since = since_arg(fcinfo, 1, function);
	SummaryCoverage coverage = summary_coverage();
	TimestampTz recent = recent_summaries_from(since, &coverage);

	detect_arg(&query, CIDRARRAYOID, PointerGetDatum(disjoint_networks(cidrs)), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(coverage.until), false);
	detect_arg(&query, TIMESTAMPTZOID,
			   TimestampTzGetDatum(recent < coverage.until ? hour_ceiling(recent) : coverage.until),
			   false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/* ---------------------------------------------------------------------
 * ato.suspicious_action_counts(user_ids, since)
 * ---------------------------------------------------------------------
 */

/* $1 user_ids, $2 since */
static const char suspicious_action_counts_sql[] =
"SELECT event_type, count(*) AS actions, count(DISTINCT actor_id) AS accounts"
"  FROM ato.audit_events"
" WHERE actor_id = ANY ($1) AND occurred_at >= $2"
" GROUP BY event_type"
" ORDER BY actions DESC, event_type";

PG_FUNCTION_INFO_V1(ato_suspicious_action_counts);

Datum
ato_suspicious_action_counts(PG_FUNCTION_ARGS)
{
	const char *function = "ato.suspicious_action_counts";
	static SPIPlanPtr plan = NULL;
	DetectQuery query = {function, suspicious_action_counts_sql};
	ArrayType  *user_ids = array_arg(fcinfo, 0, function, "user_ids",
									 "Give the accounts' ids, for example from ato.cidr_scope().");
	TimestampTz since = since_arg(fcinfo, 1, function);

	detect_arg(&query, TEXTARRAYOID, PointerGetDatum(user_ids), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since), false);
	query.saved_plan = &plan;
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}
