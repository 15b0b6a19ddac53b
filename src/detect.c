/*
 * detect.c
 *     What every detection function shares: running its one read-only
 *     query (a cursor that spools its rows into the result), checking its
 *     arguments (an error with a hint, never a silent empty answer for a
 *     NULL), and reading how far the per-account summaries reach.  The
 *     functions are in src/detect_hunt.c and src/detect_kit.c.
 *
 * The queries read only the window they are asked about: the event tables
 * are partitioned by month and BRIN-indexed on occurred_at, audit events are
 * looked up per actor, and what an account did before the window comes from
 * ato.account_countries rather than from its history.  Within the last two
 * days, new_country_logins and cidr_scope read the recent summaries
 * (ato.recent_new_country_logins, ato.recent_address_logins) instead of
 * every login of their window.  Whatever the
 * summaries do not cover yet (behind ato.summary_watermark: the stretch since the
 * last ato.refresh_summaries() and any late arrivals) is read from the event
 * store, so answers are exact whenever the refresh last ran.  Sorts that
 * only bring an account's rows together compare account ids by their bytes
 * (COLLATE "C"): that order is never shown, and the database's collation
 * would cost more.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "detect.h"
#include "event_layout.h"

#define DETECT_FETCH_ROWS 1000



void
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
void
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

	/* before planning: no month is attached under this query */
	ato_hold_event_layout();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (query->saved_plan == NULL)
	{
		/* the plan is made here: the setting lasts just as long */
		int			guc_level = query->reads_history ? NewGUCNestLevel() : -1;

		if (query->reads_history)
			(void) set_config_option("enable_nestloop", "off", PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
		portal = SPI_cursor_open_with_args(NULL, query->sql, query->nargs, query->types,
										   query->values, query->nulls, true, 0);
		if (query->reads_history)
			AtEOXact_GUC(true, guc_level);
	}
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

void
require_arg(FunctionCallInfo fcinfo, int argno, const char *function, const char *name,
			const char *hint)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: %s must not be NULL", function, name),
				 errhint("%s", hint)));
}

TimestampTz
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

Interval *
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
ArrayType *
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



SummaryCoverage
summary_coverage(void)
{
	SummaryCoverage coverage = {DT_NOBEGIN, false, DT_NOEND};
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute("SELECT least(summarised_until, late_from), late_from IS NOT NULL, recent_from"
					  "  FROM ato.summary_status", true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading ato.summary_watermark failed: %s", SPI_result_code_string(ret));
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
TimestampTz
recent_summaries_from(TimestampTz since, const SummaryCoverage *coverage)
{
	if (since >= coverage->recent_from && since < coverage->until)
		return since;
	return coverage->until;
}

/*
 * Where the event store must be read to complete the summaries before
 * "since": from where they stop, or "since" itself when they cover
 * everything before it.  When that stretch is long, says so, and has the
 * query planned for reading it (query->reads_history).
 */
TimestampTz
unsummarised_from(DetectQuery *query, TimestampTz since, TimestampTz summarised_to)
{
	TimestampTz from = Min(summarised_to, since);

	/* finite times are far from the ends of int64: since - 1 day cannot overflow */
	if (from < since && !TIMESTAMP_IS_NOEND(since) &&
		(TIMESTAMP_IS_NOBEGIN(from) || from < since - USECS_PER_DAY))
	{
		ereport(NOTICE,
				(errmsg("%s: the per-account summaries stop at %s; the events since then are read from the event store",
						query->name, TIMESTAMP_IS_NOBEGIN(from) ? "the beginning" : timestamptz_to_str(from)),
				 errhint("Run SELECT ato.refresh_summaries(), or schedule it, to keep detection fast.")));
		query->reads_history = true;
	}
	return from;
}

/* ---------------------------------------------------------------------
 * The rest of the kit: numbers and thresholds
 * ---------------------------------------------------------------------
 */

int32
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

float8
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
