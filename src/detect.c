/*
 * detect.c
 *     The detection functions of the hunt: ato.new_country_logins(),
 *     ato.cidr_scope(), ato.suspicious_action_counts() and the rest of the
 *     kit.  Each checks its arguments (an error with a hint, never a silent
 *     empty answer for a NULL), then runs one read-only query over the event
 *     store and the per-account summaries and returns its rows.
 *
 * The queries read only the window they are asked about: the event tables
 * are partitioned by month and BRIN-indexed on occurred_at, audit events are
 * looked up per actor, and what an account did before the window comes from
 * ato.account_countries rather than from its history.  Within the last two
 * days, new_country_logins and cidr_scope read the recent summaries
 * (ato.recent_new_country_logins, ato.recent_address_logins) instead of
 * every login of their window.  Whatever the
 * summaries do not cover yet (behind ato.summary_state: the stretch since the
 * last ato.refresh_summaries() and any late arrivals) is read from the event
 * store, so answers are exact whenever the refresh last ran.  Sorts that
 * only bring an account's rows together compare account ids by their bytes
 * (COLLATE "C"): that order is never shown, and the database's collation
 * would cost more.
 */
#include "postgres.h"

#include <math.h>
#include <sys/socket.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "summary.h"

#define DETECT_MAX_ARGS 8
#define DETECT_FETCH_ROWS 1000

/* One query of a detection function and its arguments. */
typedef struct DetectQuery
{
	const char *name;			/* the SQL function, for messages */
	const char *sql;
	int			nargs;
	Oid			types[DETECT_MAX_ARGS];
	Datum		values[DETECT_MAX_ARGS];
	char		nulls[DETECT_MAX_ARGS];

	/*
	 * Where to keep one generic plan for the life of the backend, or NULL to
	 * plan every call with the arguments' values.  Only for queries whose
	 * best plan does not depend on them (index scans by account): a time
	 * window needs its bounds to choose between BRIN and a scan.
	 */
	SPIPlanPtr *saved_plan;
} DetectQuery;

static void
detect_arg(DetectQuery *query, Oid type, Datum value, bool isnull)
{
	Assert(query->nargs < DETECT_MAX_ARGS);
	query->types[query->nargs] = type;
	query->values[query->nargs] = value;
	query->nulls[query->nargs] = isnull ? 'n' : ' ';
	query->nargs++;
}

/*
 * Run the query and return its rows as the function's result set.  The rows
 * are fetched through a cursor in batches, so a large answer is spooled to
 * the result's tuplestore rather than held in memory twice.
 */
static void
detect_return_rows(FunctionCallInfo fcinfo, DetectQuery *query)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	result_desc;
	Portal		portal;
	Datum	   *values;
	bool	   *nulls;
	bool		checked = false;

	ato_init_materialized_srf(fcinfo);
	result_desc = rsinfo->setDesc;
	values = palloc(result_desc->natts * sizeof(Datum));
	nulls = palloc(result_desc->natts * sizeof(bool));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (query->saved_plan == NULL)
		portal = SPI_cursor_open_with_args(NULL, query->sql, query->nargs, query->types,
										   query->values, query->nulls, true, 0);
	else
	{
		if (*query->saved_plan == NULL)
		{
			SPIPlanPtr	plan = SPI_prepare_cursor(query->sql, query->nargs, query->types,
												  CURSOR_OPT_GENERIC_PLAN);

			if (plan == NULL)
				elog(ERROR, "%s: preparing the query failed: %s",
					 query->name, SPI_result_code_string(SPI_result));
			if (SPI_keepplan(plan) != 0)
				elog(ERROR, "%s: keeping the plan failed", query->name);
			*query->saved_plan = plan;
		}
		portal = SPI_cursor_open(NULL, *query->saved_plan, query->values, query->nulls, true);
	}
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, DETECT_FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		if (!checked)
		{
			TupleDesc	got = SPI_tuptable->tupdesc;
			int			col;

			if (got->natts != result_desc->natts)
				elog(ERROR, "%s: query returns %d columns, the function %d",
					 query->name, got->natts, result_desc->natts);
			for (col = 0; col < got->natts; col++)
				if (TupleDescAttr(got, col)->atttypid != TupleDescAttr(result_desc, col)->atttypid)
					elog(ERROR, "%s: column %d of the query has type %s, the function %s",
						 query->name, col + 1,
						 format_type_be(TupleDescAttr(got, col)->atttypid),
						 format_type_be(TupleDescAttr(result_desc, col)->atttypid));
			checked = true;
		}
		for (i = 0; i < SPI_processed; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, values, nulls);
			tuplestore_putvalues(rsinfo->setResult, result_desc, values, nulls);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
}


/* ---------------------------------------------------------------------
 * Arguments
 * ---------------------------------------------------------------------
 */

static void
require_arg(FunctionCallInfo fcinfo, int argno, const char *function, const char *name,
			const char *hint)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: %s must not be NULL", function, name),
				 errhint("%s", hint)));
}

static TimestampTz
since_arg(FunctionCallInfo fcinfo, int argno, const char *function)
{
	TimestampTz since;

	require_arg(fcinfo, argno, function, "since",
				"Give the start of the window, for example now() - interval '1 hour'.");
	since = PG_GETARG_TIMESTAMPTZ(argno);
	if (TIMESTAMP_IS_NOBEGIN(since))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: since must be a finite time", function),
				 errhint("A window starting at -infinity reads the whole history; give a real start.")));
	return since;
}

static Interval *
positive_interval_arg(FunctionCallInfo fcinfo, int argno, const char *function,
					  const char *name)
{
	Interval   *span;
	Interval	zero;

	require_arg(fcinfo, argno, function, name, "Give a length of time such as interval '1 hour'.");
	span = PG_GETARG_INTERVAL_P(argno);
	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(span),
										  IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s must not be negative", function, name),
				 errhint("Give a length of time such as interval '1 hour'.")));
	return span;
}

/* An array argument: not NULL, one dimension at most. */
static ArrayType *
array_arg(FunctionCallInfo fcinfo, int argno, const char *function, const char *name,
		  const char *hint)
{
	ArrayType  *array;

	require_arg(fcinfo, argno, function, name, hint);
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s: %s must be a one-dimensional array", function, name),
				 errhint("%s", hint)));
	return array;
}


/* ---------------------------------------------------------------------
 * The summaries' coverage
 * ---------------------------------------------------------------------
 */

/* How far the summaries reach, from ato.summary_status. */
typedef struct SummaryCoverage
{
	/*
	 * The earlier of the watermark and the first late day: every successful
	 * login before it is counted; -infinity when nothing is.
	 */
	TimestampTz until;
	bool		late_days;		/* some late events are not folded in yet */
	/* the recent summaries hold the logins from here to "until" */
	TimestampTz recent_from;
} SummaryCoverage;

static SummaryCoverage
summary_coverage(void)
{
	SummaryCoverage coverage = {DT_NOBEGIN, false, DT_NOEND};
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute("SELECT least(summarised_until, late_from), late_from IS NOT NULL, recent_from"
					  "  FROM ato.summary_status", true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading ato.summary_state failed: %s", SPI_result_code_string(ret));
	if (SPI_processed > 0)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		value;

		value = SPI_getbinval(row, desc, 1, &isnull);
		if (!isnull)
			coverage.until = DatumGetTimestampTz(value);
		coverage.late_days = DatumGetBool(SPI_getbinval(row, desc, 2, &isnull));
		value = SPI_getbinval(row, desc, 3, &isnull);
		if (!isnull)
			coverage.recent_from = DatumGetTimestampTz(value);
	}
	SPI_finish();
	return coverage;
}

/*
 * Where a window starting at since may switch from the event store to the
 * recent summaries: since itself when they hold everything from there on,
 * else "until", so that the whole window is read from the event store.
 */
static TimestampTz
recent_summaries_from(TimestampTz since, const SummaryCoverage *coverage)
{
	if (since >= coverage->recent_from && since < coverage->until)
		return since;
	return coverage->until;
}

/*
 * Where the event store must be read to complete the summaries before
 * "since": from where they stop, or "since" itself when they cover
 * everything before it.  Says so when that stretch is long.
 */
static TimestampTz
unsummarised_from(TimestampTz since, TimestampTz summarised_to, const char *function)
{
	TimestampTz from = Min(summarised_to, since);

	/* finite times are far from the ends of int64: since - 1 day cannot overflow */
	if (from < since && !TIMESTAMP_IS_NOEND(since) &&
		(TIMESTAMP_IS_NOBEGIN(from) || from < since - USECS_PER_DAY))
		ereport(NOTICE,
				(errmsg("%s: the per-account summaries stop at %s; the events since then are read from the event store",
						function, TIMESTAMP_IS_NOBEGIN(from) ? "the beginning" : timestamptz_to_str(from)),
				 errhint("Run SELECT ato.refresh_summaries(), or schedule it, to keep detection fast.")));
	return from;
}


/*
 * The SQL condition "the account had no successful login from the country
 * before since": neither the summaries nor the unsummarised stretch before
 * since (from tail_from on; tail_from = since when there is none) hold one.
 * A NULL country is never familiar.  Written as two NOT EXISTS so that the
 * planner makes anti-joins of them: an index probe into the summaries, a
 * hash of the stretch.
 */
#define UNFAMILIAR_COUNTRY(user_id, country, since, tail_from) \
	"NOT EXISTS (SELECT FROM ato.account_countries k" \
	"             WHERE k.user_id = " user_id " AND k.country_code = " country \
	"               AND k.first_success_at < " since ")" \
	" AND NOT EXISTS (SELECT FROM ato.login_events t" \
	"                  WHERE t.user_id = " user_id " AND t.country_code = " country \
	"                    AND t.outcome = 'success' AND t.occurred_at >= " tail_from \
	"                    AND t.occurred_at < " since ")"


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
 * is never familiar).  Logins without a country are always returned.  The actions are counted by joining the
 * window's audit events of the given types, read once.
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
"       AND " UNFAMILIAR_COUNTRY("w.user_id", "w.country_code", "$1", "$5") "),"
" actions AS ("
"    SELECT actor_id, occurred_at FROM ato.audit_events"
"     WHERE occurred_at >= $1 AND event_type = ANY ($3))"
"SELECT n.user_id, n.ip_address, n.country_code, n.occurred_at, count(a.actor_id)"
"  FROM new_logins n"
"  LEFT JOIN actions a ON a.actor_id = n.user_id"
"       AND a.occurred_at >= n.occurred_at AND a.occurred_at <= n.occurred_at + $2"
" GROUP BY n.id, n.user_id, n.ip_address, n.country_code, n.occurred_at"
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
			   TimestampTzGetDatum(unsummarised_from(since, coverage.until, function)), false);
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


/* ---------------------------------------------------------------------
 * The rest of the kit: numbers and thresholds
 * ---------------------------------------------------------------------
 */

static int32
count_arg(FunctionCallInfo fcinfo, int argno, const char *function, const char *name)
{
	int32		value;

	require_arg(fcinfo, argno, function, name, "Give a whole number of at least 1.");
	value = PG_GETARG_INT32(argno);
	if (value < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s must be at least 1", function, name),
				 errhint("Give a whole number of at least 1.")));
	return value;
}

static float8
number_arg(FunctionCallInfo fcinfo, int argno, const char *function, const char *name,
		   float8 low, float8 high)
{
	float8		value;

	require_arg(fcinfo, argno, function, name, "Give a number.");
	value = PG_GETARG_FLOAT8(argno);
	if (isnan(value) || value < low || value > high)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s must be between %g and %g", function, name, low, high),
				 errhint("Give a number in that range.")));
	return value;
}


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

static const char credential_stuffing_sql[] =
"WITH per_account AS ("
"    SELECT 'address' AS source_kind, host(ip_address) AS source,"
"           count(*) AS attempts, count(*) FILTER (WHERE outcome = 'success') AS successes"
STUFFING_ATTEMPTS
"     GROUP BY ip_address, user_id"
"    UNION ALL"
"    SELECT 'network', " STUFFING_PREFIX "::text, count(*), count(*) FILTER (WHERE outcome = 'success')"
STUFFING_ATTEMPTS
"     GROUP BY " STUFFING_PREFIX ", user_id"
"    UNION ALL"
"    SELECT 'asn', 'AS' || asn, count(*), count(*) FILTER (WHERE outcome = 'success')"
STUFFING_ATTEMPTS " AND asn IS NOT NULL"
"     GROUP BY asn, user_id),"
" g AS ("
"    SELECT source_kind, source, sum(attempts)::bigint AS attempts, sum(successes)::bigint AS successes,"
"           count(*) AS accounts"
"      FROM per_account GROUP BY source_kind, source)"
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


/* ---------------------------------------------------------------------
 * ato.password_spray(since, min_accounts, max_attempts_per_account)
 * ---------------------------------------------------------------------
 */

/*
 * $1 since, $2 min_accounts, $3 max_attempts_per_account.  The attempts are
 * grouped per address and account first, so that the accounts of an address
 * are counted by hashing rather than by sorting its attempts.
 */
static const char password_spray_sql[] =
"WITH per_account AS ("
"    SELECT ip_address, count(*) AS attempts, count(*) FILTER (WHERE outcome = 'failure') AS failures,"
"           count(*) FILTER (WHERE outcome = 'success') AS successes,"
"           min(occurred_at) AS first_attempt, max(occurred_at) AS last_attempt"
"      FROM ato.login_events"
"     WHERE occurred_at >= $1 AND ip_address IS NOT NULL"
"     GROUP BY ip_address, user_id)"
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
 * it matches.
 */
static const char persistence_changes_sql[] =
"SELECT DISTINCT ON (a.occurred_at, a.id)"
"       a.actor_id, p.category, a.event_type, a.occurred_at, a.ip_address, a.country_code,"
"       a.target_type, a.target_id"
"  FROM ato.audit_events a"
"  JOIN ato.persistence_event_types p ON a.event_type LIKE p.pattern"
" WHERE a.occurred_at >= $2 AND ($1::text[] IS NULL OR a.actor_id = ANY ($1))"
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
static const char related_accounts_sql[] =
"WITH given AS (SELECT DISTINCT u FROM unnest($1::text[]) u WHERE u IS NOT NULL),"
" w AS ("
"    SELECT id, user_id, ip_address, user_agent, occurred_at FROM ato.login_events"
"     WHERE occurred_at >= $2 AND outcome = 'success'),"
" rare_agents AS ("
"    SELECT user_agent FROM w WHERE user_agent IS NOT NULL"
"     GROUP BY user_agent HAVING count(DISTINCT user_id) <= $3),"
" seen AS ("
"    SELECT DISTINCT w.user_id AS given_id, w.ip_address,"
"           CASE WHEN w.user_agent IN (SELECT user_agent FROM rare_agents) THEN w.user_agent END AS user_agent"
"      FROM w JOIN given ON given.u = w.user_id),"
" links AS ("
"    SELECT o.id, o.user_id, o.occurred_at, s.given_id, o.ip_address AS shared_address,"
"           NULL::text AS shared_user_agent"
"      FROM w o JOIN seen s ON o.ip_address = s.ip_address"
"    UNION ALL"
"    SELECT o.id, o.user_id, o.occurred_at, s.given_id, NULL, o.user_agent"
"      FROM w o JOIN seen s ON o.user_agent = s.user_agent),"
" others AS (SELECT * FROM links WHERE user_id NOT IN (SELECT u FROM given))"
"SELECT user_id,"
"       coalesce(array_agg(DISTINCT shared_address ORDER BY shared_address)"
"                FILTER (WHERE shared_address IS NOT NULL), '{}') AS shared_addresses,"
"       coalesce(array_agg(DISTINCT shared_user_agent ORDER BY shared_user_agent)"
"                FILTER (WHERE shared_user_agent IS NOT NULL), '{}') AS shared_user_agents,"
"       array_agg(DISTINCT given_id ORDER BY given_id) AS related_to,"
"       count(DISTINCT id) AS logins, min(occurred_at) AS first_login, max(occurred_at) AS last_login"
"  FROM others GROUP BY user_id"
" ORDER BY cardinality(array_agg(DISTINCT given_id)) DESC, user_id";

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
				   TimestampTzGetDatum(unsummarised_from(since, summarised_to, function)), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}
