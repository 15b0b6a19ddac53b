/*
 * summary.c
 *     How the per-account summaries (ato.account_countries and the others
 *     ato.refresh_summaries() keeps) stay exact while login events are stored
 *     beside a refresh, without a writer ever waiting for one: the writers'
 *     side (noticing the logins that arrive too late for a refresh to have
 *     seen them) and the refresh's (ato.summary_refresh_begin(), which the
 *     refresh calls before it reads the event store).
 *
 * The summaries cover every successful login with occurred_at before
 * ato.summary_watermark.summarised_until (the watermark); ato.refresh_summaries()
 * folds in what lies between the watermark and a minute ago, set-based, and
 * moves the watermark on.  A login stored later with an occurred_at behind
 * the watermark (an import of history, a delayed report, an update) would be
 * missed, so the trigger appends its day to ato.summary_late_days and the
 * next refresh folds that stretch in again.  The detection functions read
 * whatever is not summarised yet from the event store itself, so their
 * answers never depend on when the last refresh ran.
 *
 * A refresh R, in ato.summary_refresh_begin():
 *   1. takes the refresh lock, a transaction-level advisory lock that only
 *      refreshes take: refreshes run one at a time (writers never touch it);
 *   2. reads the watermark w0, computes the one it will set, upto =
 *      max(w0, min(until, T - 1 minute)) where T is its transaction's start,
 *      and publishes upto in ato.summary_refresh_bound, a sequence (written
 *      at once, outside the transaction, and read without waiting);
 *   3. lists ato.login_events and all its partitions and waits for every
 *      transaction then holding ROW EXCLUSIVE on one of them (an INSERT, a
 *      COPY, an UPDATE, also straight into a partition) to end, the way
 *      CREATE INDEX CONCURRENTLY waits: it takes no lock on them, so a new
 *      writer never waits, not even behind the refresh in a lock queue;
 *   and then, at READ COMMITTED, reads the late days (and deletes exactly
 *   those at the end) and folds with snapshots taken after the wait.
 *
 * A writer W notes each successful login it stores (summary_note_login):
 * one that occurred at or after a minute before the clock at W's first
 * noted login f is taken as on time, with nothing read; for an earlier one W
 * reads the published bound b once (never waiting) and appends the login's
 * day when occurred_at < b.
 *
 * Why this is exact: take a refresh R whose snapshots do not show a login L
 * that W commits.  R waited for every writer that held ROW EXCLUSIVE when it
 * looked (step 3), so W was not one: W locked the partition of its first
 * noted login (which it holds from before noting it to its end) after R
 * looked, or after R listed the partitions if it was attached since; that is
 * after R's transaction began, after every earlier refresh's began (they
 * ended before R took the refresh lock) and after R published.  No watermark
 * passes the latest transaction start of the refreshes so far less a minute,
 * so every watermark up to R's is below f less a minute: a login taken as on
 * time is beyond R's watermark, and the next refresh that sees it folds it
 * in.  An earlier login was compared with a bound read after R published,
 * which is then at least R's upto (a later refresh publishes only once R has
 * ended, and starts from R's watermark): if it is behind R's watermark its
 * day was appended, in a row that commits with W, after R's snapshots, so R
 * (which deletes only the late days it read) leaves it to the next refresh,
 * which sees W.  A refresh that gives up (lock_timeout, statement_timeout, a
 * cancel) changes nothing and publishes the old watermark again, which is
 * safe since it still holds the refresh lock (one that fails later leaves
 * the bound above the watermark: writers mark more than they need to until
 * the next refresh).  A subtransaction that rolls
 * back releases the locks taken in it, perhaps the one this rests on, so W
 * then forgets f and b and takes them again at its next login; and b is read
 * once per transaction, after that lock, so a refresh that publishes later
 * waits for W.
 *
 * Each late day is appended once per transaction (it remembers the days it
 * appended): the refresh folds in again exactly the days listed, a day each,
 * not the whole stretch from the earliest on (appending, unlike updating one
 * row, never makes writers wait for each other or fail to serialize), as the
 * extension's owner, so that a role that may only insert events needs no
 * privilege on the summary tables.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "locks.h"
#include "owner.h"
#include "summary.h"

/*
 * How far behind the time of its transaction start a refresh leaves the
 * watermark at the least (ato.refresh_summaries() says the same).
 */
#define SUMMARY_MIN_LAG_USECS	(60 * USECS_PER_SEC)


/* What this transaction knows of the published bound; reset when it ends. */
typedef struct SummaryWatch
{
	bool		started;		/* a login was noted in this transaction */
	TimestampTz first_noted_at; /* the clock at the first one */
	bool		bound_known;
	TimestampTz bound;			/* ato.summary_refresh_bound */
	HTAB	   *marked_days;	/* the late days appended in this transaction,
								 * in TopTransactionContext; NULL: none */
	TimestampTz last_marked;	/* the last of them (valid when marked_days) */
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
	/*
	 * The mark may have been rolled back with the savepoint, and the lock
	 * that the first noted login was stored under released with it: start
	 * over from the next login (a later clock and a fresh bound only make
	 * the test stricter).
	 */
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		watch.started = false;
		watch.bound_known = false;
		watch.marked_days = NULL;	/* freed with the transaction's memory */
	}
}

/*
 * Run one statement on the summary objects as their owner (restricted, with
 * search_path pinned to pg_catalog, pg_temp), with at most one
 * argument (argtype InvalidOid: none).  Returns the first column of the
 * first row (a timestamptz, or a bigint holding one), if it asked for one
 * and there is one; does nothing and returns false when the summaries are
 * not there.
 */
static bool
summary_statement(const char *sql, bool read_only, Oid argtype, Datum arg,
				  TimestampTz *result)
{
	Oid			owner;
	ActingAs	acting;
	Oid			argtypes[1] = {argtype};
	Datum		values[1] = {arg};
	bool		found = false;
	int			ret;

	/*
	 * The owner of ato.summary_watermark, as whom the summaries are maintained;
	 * none when the table is not there (the SQL objects of an older version
	 * of the extension under this library: there are no summaries to keep,
	 * and storing events must not fail for it).
	 */
	owner = ato_relation_owner("summary_watermark");
	if (!OidIsValid(owner))
		return false;

	ato_act_as(owner, &acting);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (read_only)
		PushActiveSnapshot(GetLatestSnapshot());
	ret = SPI_execute_with_args(sql, OidIsValid(argtype) ? 1 : 0, argtypes, values, NULL,
								read_only, 1);
	if (ret < 0)
		elog(ERROR, "\"%s\" failed: %s", sql, SPI_result_code_string(ret));
	if (result != NULL && SPI_processed > 0)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			/* timestamptz and bigint are both an int64 by value */
			*result = DatumGetTimestampTz(value);
			found = true;
		}
	}
	if (read_only)
		PopActiveSnapshot();
	SPI_finish();

	ato_act_as_end(&acting);
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

	/* reported as it happened: no refresh can pass it */
	if (occurred_at >= watch.first_noted_at - SUMMARY_MIN_LAG_USECS)
		return;

	day = summary_time_floor(occurred_at, USECS_PER_DAY);
	if (watch.marked_days != NULL &&
		(day == watch.last_marked || hash_search(watch.marked_days, &day, HASH_FIND, NULL) != NULL))
		return;

	if (!watch.bound_known)
	{
		/*
		 * No summaries (older SQL objects): nothing is late.  Summaries but
		 * no bound to read (objects of a build before it): everything is.
		 */
		if (!OidIsValid(ato_relation_owner("summary_watermark")))
			watch.bound = DT_NOBEGIN;
		else if (!OidIsValid(ato_relation_owner("summary_refresh_bound")) ||
				 !summary_statement("SELECT last_value FROM ato.summary_refresh_bound",
									true, InvalidOid, (Datum) 0, &watch.bound))
			watch.bound = DT_NOEND;
		watch.bound_known = true;
	}
	if (occurred_at >= watch.bound)
		return;

	/* behind where a refresh may have moved: have the next one fold its day in */
	summary_statement("INSERT INTO ato.summary_late_days (day) VALUES ($1)",
					  false, TIMESTAMPTZOID, TimestampTzGetDatum(day), NULL);
	if (watch.marked_days == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(TimestampTz);
		ctl.entrysize = sizeof(TimestampTz);
		ctl.hcxt = TopTransactionContext;
		watch.marked_days = hash_create("ato_response late days", 64, &ctl,
										HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	(void) hash_search(watch.marked_days, &day, HASH_ENTER, NULL);
	watch.last_marked = day;
}

/* Publish the watermark a refresh may set: see the header. */
static void
summary_publish_bound(TimestampTz bound)
{
	summary_statement("SELECT pg_catalog.setval('ato.summary_refresh_bound', $1)",
					  false, INT8OID, Int64GetDatum((int64) bound), NULL);
}

/*
 * Wait for every other transaction that holds ROW EXCLUSIVE (what INSERT,
 * COPY, UPDATE and DELETE take) on ato.login_events or one of its
 * partitions, without taking a lock on them: pg_locks's data, then the end
 * of each holder.  A VACUUM or ANALYZE (SHARE UPDATE EXCLUSIVE) is not
 * waited for.
 */
static void
summary_wait_for_writers(void)
{
	Oid			relid = ato_relation_id("login_events");
	List	   *relations;
	LockData   *locks;
	VirtualTransactionId *holders;
	int			nholders = 0;

	if (!OidIsValid(relid))
		elog(ERROR, "relation ato.login_events does not exist");
	/* a partition attached since this statement began must be in the list */
	InvalidateCatalogSnapshot();
	relations = find_all_inheritors(relid, NoLock, NULL);

	locks = GetLockStatusData();
	holders = palloc(sizeof(VirtualTransactionId) * Max(locks->nelements, 1));
	for (int i = 0; i < locks->nelements; i++)
	{
		LockInstanceData *lock = &locks->locks[i];
		VirtualTransactionId vxid;
		bool		seen = false;

		if (lock->locktag.locktag_type != LOCKTAG_RELATION ||
			lock->locktag.locktag_lockmethodid != DEFAULT_LOCKMETHOD ||
			lock->locktag.locktag_field1 != MyDatabaseId ||
			(lock->holdMask & LOCKBIT_ON(RowExclusiveLock)) == 0 ||
			lock->pid == MyProcPid ||
			!list_member_oid(relations, (Oid) lock->locktag.locktag_field2))
			continue;
		vxid.backendId = lock->backend;
		vxid.localTransactionId = lock->lxid;
		if (!VirtualTransactionIdIsValid(vxid))
			continue;
		for (int j = 0; j < nholders && !seen; j++)
			seen = VirtualTransactionIdEquals(holders[j], vxid);
		if (!seen)
			holders[nholders++] = vxid;
	}
	for (int j = 0; j < nholders; j++)
		(void) VirtualXactLock(holders[j], true);
}

/*
 * Wait for the writers; on an error (lock_timeout, statement_timeout, a
 * cancel) nothing has changed, and the bound goes back to the watermark
 * before the error is passed on, which takes a subtransaction.
 */
static void
summary_wait_or_unpublish(TimestampTz watermark)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		summary_wait_for_writers();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;

		summary_publish_bound(watermark);
		if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("ato.refresh_summaries() gave up waiting for the transactions storing login events"),
					 errdetail("It waited for them for lock_timeout (%s).",
							   GetConfigOption("lock_timeout", false, false)),
					 errhint("A long transaction (an import?) is writing to ato.login_events: the next refresh after it ends folds it in, and the detection functions read what is not summarised from the event store meanwhile.")));
		ReThrowError(edata);
	}
	PG_END_TRY();
}

PG_FUNCTION_INFO_V1(ato_summary_refresh_begin);

/*
 * ato.summary_refresh_begin(until): steps 1 to 3 of a refresh (see the
 * header); returns the watermark the refresh moves to.
 */
Datum
ato_summary_refresh_begin(PG_FUNCTION_ARGS)
{
	TimestampTz until = PG_GETARG_TIMESTAMPTZ(0);
	TimestampTz watermark;
	TimestampTz upto;
	LOCKTAG		tag;

	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("ato.refresh_summaries() must run at isolation level read committed"),
				 errdetail("It waits for the transactions storing login events and must then see what they stored, which a transaction snapshot taken before would hide."),
				 errhint("Call it outside a REPEATABLE READ or SERIALIZABLE transaction.")));

	/* the refresh lock (include/locks.h), which no role can take from SQL */
	ato_lock_tag(&tag, ATO_LOCK_SUMMARY_REFRESH);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	if (!summary_statement("SELECT summarised_until FROM ato.summary_watermark",
						   true, InvalidOid, (Datum) 0, &watermark))
		watermark = DT_NOBEGIN;
	/* never backwards, and never within the last minute */
	upto = Max(watermark, Min(until, GetCurrentTransactionStartTimestamp() - SUMMARY_MIN_LAG_USECS));
	summary_publish_bound(upto);
	summary_wait_or_unpublish(watermark);

	PG_RETURN_TIMESTAMPTZ(upto);
}
