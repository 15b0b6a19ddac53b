/*
 * sessions.c
 *     The one rule for an application's sessions and tokens:
 *     ato.session_status() (whether one is refused, and why) and
 *     ato.session_revoked() (the boolean alone); ato.session_statuses() (many
 *     in one call) is SQL over the first.  It sits in every request's path,
 *     so it is one kept generic plan and no PL/pgSQL.
 *
 * A session of an account is refused, in this order of precedence:
 *   suspended        the account is suspended, whenever the session was
 *                    issued (as Okta and Firebase do), until it is lifted;
 *   session_revoked  this session or device was revoked on its own
 *                    (ato.revoke_session());
 *   revoked          it was issued at or before the account's revocation
 *                    time (an unknown issue time counts as before);
 * else it is valid.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "arguments.h"

typedef struct SessionVerdict
{
	const char *verdict;		/* an ato.session_verdict label */
	bool		has_incident;
	Datum		incident_id;	/* uuid */
	bool		has_time;
	Datum		revoked_at;		/* timestamptz */
	bool		has_reason;
	Datum		reason;			/* text */
} SessionVerdict;

/*
 * The three things the rule reads, each one index probe, run in the rule's
 * order and only as far as needed: the suspension, the session's own
 * revocation (when the caller names the session), the account's revocation
 * that covers the issue time.  The incident's reason is read only for a
 * refused session, and only when the caller wants the details.
 */
enum
{
	PROBE_SUSPENSION,
	PROBE_SESSION,
	PROBE_ACCOUNT,
	PROBE_REASON,
	PROBES
};

static const char *const probe_sql[PROBES] = {
	"SELECT f.incident_id, f.updated_at, f.reason FROM ato.account_flags f"
	" WHERE f.user_id OPERATOR(pg_catalog.=) $1 COLLATE pg_catalog.\"C\" AND f.suspended",
	"SELECT NULL::uuid, r.revoked_at, r.reason FROM ato.session_revocations r"
	" WHERE r.user_id OPERATOR(pg_catalog.=) $1 COLLATE pg_catalog.\"C\""
	"   AND r.session_id OPERATOR(pg_catalog.=) $2::text COLLATE pg_catalog.\"C\"",
	"SELECT r.incident_id, r.revoked_at FROM ato.account_revocations r"
	" WHERE r.user_id OPERATOR(pg_catalog.=) $1 COLLATE pg_catalog.\"C\""
	"   AND ($2::timestamptz IS NULL OR $2::timestamptz OPERATOR(pg_catalog.<=) r.revoked_at)",
	"SELECT i.reason FROM ato.incidents i WHERE i.id OPERATOR(pg_catalog.=) $1::uuid"
};

static const Oid probe_types[PROBES][2] = {
	{TEXTOID, InvalidOid},
	{TEXTOID, TEXTOID},
	{TEXTOID, TIMESTAMPTZOID},
	{UUIDOID, InvalidOid}
};

/*
 * Run one probe (inside SPI_connect()); true if it found a row, whose
 * columns result_datum() then copies out.
 */
static bool
probe(int which, Datum first, bool second_null, Datum second)
{
	static SPIPlanPtr plans[PROBES];
	Datum		values[2] = {first, second};
	char		nulls[2] = {' ', second_null ? 'n' : ' '};

	if (plans[which] == NULL)
	{
		int			nargs = OidIsValid(probe_types[which][1]) ? 2 : 1;
		SPIPlanPtr	fresh = SPI_prepare_cursor(probe_sql[which], nargs, (Oid *) probe_types[which],
											   CURSOR_OPT_GENERIC_PLAN);

		if (fresh == NULL || SPI_keepplan(fresh) != 0)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		plans[which] = fresh;
	}
	if (SPI_execute_plan(plans[which], values, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading the session's revocations failed");
	return SPI_processed > 0;
}

/*
 * Copy column col of the probe's row into the memory of the caller of
 * SPI_connect(); false for a NULL.
 */
static bool
result_datum(int col, Datum *value)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);

	if (!isnull)
	{
		Form_pg_attribute attr = TupleDescAttr(SPI_tuptable->tupdesc, col - 1);

		*value = SPI_datumTransfer(d, attr->attbyval, attr->attlen);
	}
	return !isnull;
}

/* The incident, time and reason of a probe that found its row. */
static void
read_details(SessionVerdict *out, bool reason_column)
{
	out->has_incident = result_datum(1, &out->incident_id);
	out->has_time = result_datum(2, &out->revoked_at);
	if (reason_column)
		out->has_reason = result_datum(3, &out->reason);
}

/*
 * The verdict on one session; inside SPI_connect().  Without details only
 * out->verdict is set.
 */
static void
judge_session(Datum user_id, bool issued_null, Datum issued_at, bool session_null, Datum session_id,
			  bool details, SessionVerdict *out)
{
	memset(out, 0, sizeof(*out));
	if (probe(PROBE_SUSPENSION, user_id, true, (Datum) 0))
	{
		out->verdict = "suspended";
		if (details)
			read_details(out, true);
	}
	else if (!session_null && probe(PROBE_SESSION, user_id, false, session_id))
	{
		out->verdict = "session_revoked";
		if (details)
			read_details(out, true);
	}
	else if (probe(PROBE_ACCOUNT, user_id, issued_null, issued_at))
	{
		out->verdict = "revoked";
		if (details)
		{
			read_details(out, false);
			if (out->has_incident && probe(PROBE_REASON, out->incident_id, true, (Datum) 0))
				out->has_reason = result_datum(1, &out->reason);
		}
	}
	else
		out->verdict = "valid";
}

static void
connect_spi(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* The verdict as a result row of the function's type (an enum label first). */
static void
verdict_values(const SessionVerdict *verdict, TupleDesc desc, int first, Datum *values, bool *nulls)
{
	Oid			verdict_type = TupleDescAttr(desc, first + 1)->atttypid;

	values[first] = BoolGetDatum(strcmp(verdict->verdict, "valid") != 0);
	nulls[first] = false;
	values[first + 1] = DirectFunctionCall2(enum_in, CStringGetDatum(verdict->verdict),
											ObjectIdGetDatum(verdict_type));
	nulls[first + 1] = false;
	values[first + 2] = verdict->incident_id;
	nulls[first + 2] = !verdict->has_incident;
	values[first + 3] = verdict->revoked_at;
	nulls[first + 3] = !verdict->has_time;
	values[first + 4] = verdict->reason;
	nulls[first + 4] = !verdict->has_reason;
}

static TupleDesc
result_desc(FunctionCallInfo fcinfo)
{
	TupleDesc	desc;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	return BlessTupleDesc(desc);
}

/* ato.session_revoked(user_id text, issued_at timestamptz) RETURNS boolean */
PG_FUNCTION_INFO_V1(ato_session_revoked);
Datum
ato_session_revoked(PG_FUNCTION_ARGS)
{
	SessionVerdict verdict;

	ato_check_account_id("session_revoked", "user_id", PG_ARGISNULL(0), PG_GETARG_DATUM(0));
	connect_spi();
	judge_session(PG_GETARG_DATUM(0), PG_ARGISNULL(1), PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
				  true, (Datum) 0, false, &verdict);
	SPI_finish();
	PG_RETURN_BOOL(strcmp(verdict.verdict, "valid") != 0);
}

/*
 * ato.session_status(user_id text, issued_at timestamptz, session_id text,
 *     OUT refused boolean, OUT verdict ato.session_verdict, OUT incident_id uuid,
 *     OUT revoked_at timestamptz, OUT reason text)
 */
PG_FUNCTION_INFO_V1(ato_session_status);
Datum
ato_session_status(PG_FUNCTION_ARGS)
{
	SessionVerdict verdict;
	TupleDesc	desc = result_desc(fcinfo);
	Datum		values[5];
	bool		nulls[5];

	ato_check_account_id("session_status", "user_id", PG_ARGISNULL(0), PG_GETARG_DATUM(0));
	connect_spi();
	judge_session(PG_GETARG_DATUM(0), PG_ARGISNULL(1), PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
				  PG_ARGISNULL(2), PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2), true, &verdict);
	SPI_finish();
	verdict_values(&verdict, desc, 0, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
