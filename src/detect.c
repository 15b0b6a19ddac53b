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
 * ato.account_countries rather than from its history.  Whatever the
 * summaries do not cover yet (behind ato.summary_state: the stretch since the
 * last ato.refresh_summaries() and any late arrivals) is read from the event
 * store, so answers are exact whenever the refresh last ran.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"

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
	portal = SPI_cursor_open_with_args(NULL, query->sql, query->nargs, query->types,
									   query->values, query->nulls, true, 0);
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

/*
 * Where the event store must be read to complete the summaries before
 * "since": the earlier of the watermark and the first late day, or "since"
 * itself when the summaries cover everything before it.
 */
static TimestampTz
unsummarised_from(TimestampTz since, const char *function)
{
	TimestampTz from = since;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute("SELECT least(summarised_until, late_from) FROM ato.summary_status",
					  true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading ato.summary_state failed: %s", SPI_result_code_string(ret));
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull && DatumGetTimestampTz(value) < since)
			from = DatumGetTimestampTz(value);
	}
	else
		from = DT_NOBEGIN;		/* no state: nothing is summarised */
	SPI_finish();

	/* finite times are far from the ends of int64: since - 1 day cannot overflow */
	if (from < since && !TIMESTAMP_IS_NOEND(since) &&
		(TIMESTAMP_IS_NOBEGIN(from) || from < since - USECS_PER_DAY))
		ereport(NOTICE,
				(errmsg("%s: the per-account summaries stop at %s; the events since then are read from the event store",
						function, TIMESTAMP_IS_NOBEGIN(from) ? "the beginning" : timestamptz_to_str(from)),
				 errhint("Run SELECT ato.refresh_summaries(), or schedule it, to keep detection fast.")));
	return from;
}


/* ---------------------------------------------------------------------
 * ato.new_country_logins(since, action_window, action_types)
 * ---------------------------------------------------------------------
 */

/*
 * $1 since, $2 action_window, $3 action_types, $4 where the unsummarised
 * stretch before since begins ($4 = $1: none).  A login is new when neither
 * the summaries nor that stretch hold an earlier successful login of the
 * account from its country; a login with no country is always returned.
 */
static const char new_country_logins_sql[] =
"SELECT w.user_id, w.ip_address, w.country_code, w.occurred_at,"
"       (SELECT count(*) FROM ato.audit_events a"
"         WHERE a.actor_id = w.user_id AND a.event_type = ANY ($3)"
"           AND a.occurred_at >= w.occurred_at AND a.occurred_at <= w.occurred_at + $2)"
"  FROM ato.login_events w"
" WHERE w.occurred_at >= $1 AND w.outcome = 'success'"
"   AND NOT EXISTS (SELECT FROM ato.account_countries k"
"                    WHERE k.user_id = w.user_id AND k.country_code = w.country_code"
"                      AND k.first_success_at < $1)"
"   AND NOT EXISTS (SELECT FROM ato.login_events t"
"                    WHERE t.user_id = w.user_id AND t.country_code = w.country_code"
"                      AND t.outcome = 'success' AND t.occurred_at >= $4 AND t.occurred_at < $1)"
" ORDER BY w.occurred_at, w.user_id, w.id";

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

	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since), false);
	detect_arg(&query, INTERVALOID, IntervalPGetDatum(action_window), false);
	detect_arg(&query, TEXTARRAYOID, PointerGetDatum(action_types), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(unsummarised_from(since, function)), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}


/* ---------------------------------------------------------------------
 * ato.cidr_scope(cidrs, since)
 * ---------------------------------------------------------------------
 */

/* $1 cidrs, $2 since */
static const char cidr_scope_sql[] =
"WITH hits AS ("
"    SELECT user_id, ip_address, occurred_at FROM ato.login_events"
"     WHERE occurred_at >= $2 AND outcome = 'success' AND ip_address <<= ANY ($1::inet[])),"
" accounts AS ("
"    SELECT user_id, count(*) AS logins, min(occurred_at) AS first_login,"
"           max(occurred_at) AS last_login, array_agg(DISTINCT ip_address ORDER BY ip_address) AS ips"
"      FROM hits GROUP BY user_id)"
"SELECT c.user_id, c.logins, c.first_login, c.last_login, c.ips,"
"       coalesce((SELECT jsonb_object_agg(event_type, n ORDER BY event_type)"
"                   FROM (SELECT a.event_type, count(*) AS n FROM ato.audit_events a"
"                          WHERE a.actor_id = c.user_id AND a.occurred_at >= c.first_login"
"                          GROUP BY a.event_type) x), '{}'::jsonb)"
"  FROM accounts c"
" ORDER BY c.first_login, c.user_id";

PG_FUNCTION_INFO_V1(ato_cidr_scope);

Datum
ato_cidr_scope(PG_FUNCTION_ARGS)
{
	const char *function = "ato.cidr_scope";
	DetectQuery query = {function, cidr_scope_sql};
	ArrayType  *cidrs = array_arg(fcinfo, 0, function, "cidrs",
								  "Give the attacker's networks, for example '{192.0.2.0/24, 2001:db8::/32}'.");
	TimestampTz since = since_arg(fcinfo, 1, function);

	detect_arg(&query, CIDRARRAYOID, PointerGetDatum(cidrs), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since), false);
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
	DetectQuery query = {function, suspicious_action_counts_sql};
	ArrayType  *user_ids = array_arg(fcinfo, 0, function, "user_ids",
									 "Give the accounts' ids, for example from ato.cidr_scope().");
	TimestampTz since = since_arg(fcinfo, 1, function);

	detect_arg(&query, TEXTARRAYOID, PointerGetDatum(user_ids), false);
	detect_arg(&query, TIMESTAMPTZOID, TimestampTzGetDatum(since), false);
	detect_return_rows(fcinfo, &query);
	return (Datum) 0;
}
