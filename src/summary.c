/*
 * summary.c
 *     The write-time side of the summaries (ato.account_countries and the
 *     others ato.refresh_summaries() keeps):
 *     noticing, as login events are stored, the ones that arrive too late for
 *     ato.refresh_summaries() to have seen them.
 *
 * The summaries cover every successful login with occurred_at before
 * ato.summary_state.summarised_until (the watermark); ato.refresh_summaries()
 * folds in what lies between the watermark and a minute ago, set-based, and
 * moves the watermark on.  A login stored later with an occurred_at behind
 * the watermark (an import of history, a delayed report, an update) would be
 * missed, so the trigger appends its day to ato.summary_late_days and the
 * next refresh folds that stretch in again.  The detection functions read
 * whatever is not summarised yet from the event store itself, so their
 * answers never depend on when the last refresh ran.
 *
 * Why this is exact: a refresh locks ato.login_events in SHARE mode, which
 * waits for every transaction that is inserting and keeps new ones waiting
 * until it commits.  A transaction that stores a login therefore sees the
 * watermark of the last refresh that committed before it took its lock, and
 * no refresh commits until it ends.  The watermark never passes the refresh's
 * start minus a minute, so a login that occurred within a minute before this
 * transaction's first stored login cannot be behind it: for the usual event,
 * reported as it happens, nothing is read at all.  The watermark is read
 * (with the latest snapshot, so that an older transaction snapshot cannot
 * hide a refresh) once per transaction, and a day is appended only when it
 * lies outside the days this transaction has appended so far: the earliest
 * tells the refresh where to fold from, the latest whether the stretch its
 * recent summaries cover was touched (appending, unlike updating one row,
 * never makes writers wait for each other or fail to serialize), as the
 * extension's owner, so that a role that may only insert events needs no
 * privilege on the summary tables.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "owner.h"
#include "summary.h"

/*
 * How far behind the time of its transaction start a refresh leaves the
 * watermark at the least (ato.refresh_summaries() says the same).
 */
#define SUMMARY_MIN_LAG_USECS	(60 * USECS_PER_SEC)

/* What this transaction knows of the watermark; reset when it ends. */
typedef struct SummaryWatch
{
	bool		started;		/* a login was noted in this transaction */
	TimestampTz first_noted_at; /* the clock at the first one */
	bool		watermark_known;
	TimestampTz watermark;		/* ato.summary_state.summarised_until */
	bool		marked;			/* a late day was appended in this transaction */
	TimestampTz marked_from;	/* the earliest such day */
	TimestampTz marked_to;		/* and the latest */
} SummaryWatch;

static SummaryWatch watch;
static bool callbacks_registered = false;

static void
summary_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			memset(&watch, 0, sizeof(watch));
			break;
		default:
			break;
	}
}

static void
summary_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	/* the mark may have been rolled back with the savepoint: mark again */
	if (event == SUBXACT_EVENT_ABORT_SUB)
		watch.marked = false;
}

/*
 * Run one statement on the summary tables as their owner.  Returns the first
 * column of the first row, if it asked for one and there is one; does
 * nothing and returns false when the table does not exist.
 */
static bool
summary_statement(const char *sql, bool read_only, Datum arg, bool has_arg,
				  TimestampTz *result)
{
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	bool		found = false;
	int			ret;

	/*
	 * The owner of ato.summary_state, as whom the summaries are maintained;
	 * none when the table is not there (the SQL objects of an older version
	 * of the extension under this library: there are no summaries to keep,
	 * and storing events must not fail for it).
	 */
	owner = ato_relation_owner("summary_state");
	if (!OidIsValid(owner))
		return false;

	values[0] = arg;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (read_only)
		PushActiveSnapshot(GetLatestSnapshot());
	ret = SPI_execute_with_args(sql, has_arg ? 1 : 0, argtypes, values, NULL,
								read_only, 1);
	if (ret < 0)
		elog(ERROR, "\"%s\" failed: %s", sql, SPI_result_code_string(ret));
	if (result != NULL && SPI_processed > 0)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			*result = DatumGetTimestampTz(value);
			found = true;
		}
	}
	if (read_only)
		PopActiveSnapshot();
	SPI_finish();

	SetUserIdAndSecContext(save_userid, save_sec_context);
	return found;
}

void
summary_note_login(TimestampTz occurred_at)
{
	TimestampTz day;

	if (!callbacks_registered)
	{
		RegisterXactCallback(summary_xact_callback, NULL);
		RegisterSubXactCallback(summary_subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (!watch.started)
	{
		watch.started = true;
		watch.first_noted_at = GetCurrentTimestamp();
	}

	/* reported as it happened: no refresh can have passed it */
	if (occurred_at >= watch.first_noted_at - SUMMARY_MIN_LAG_USECS)
		return;

	if (!watch.watermark_known)
	{
		if (!summary_statement("SELECT summarised_until FROM ato.summary_state",
							   true, (Datum) 0, false, &watch.watermark))
			watch.watermark = DT_NOBEGIN;	/* no state row: nothing summarised */
		watch.watermark_known = true;
	}
	if (occurred_at >= watch.watermark)
		return;

	/* behind the watermark: have the next refresh fold its day in again */
	day = summary_time_floor(occurred_at, USECS_PER_DAY);
	if (watch.marked && watch.marked_from <= day && day <= watch.marked_to)
		return;
	summary_statement("INSERT INTO ato.summary_late_days (day) VALUES ($1)",
					  false, TimestampTzGetDatum(day), true, NULL);
	if (!watch.marked || day < watch.marked_from)
		watch.marked_from = day;
	if (!watch.marked || day > watch.marked_to)
		watch.marked_to = day;
	watch.marked = true;
}
