/*
 * fence.c
 *     The revocation fence: no session that an application issues in the
 *     transaction of a login_gate() that said "ok" can outlive a revocation
 *     of its account that was in flight meanwhile, and no login waits for a
 *     revocation of another account.
 *
 * Every login (ato.login_gate() through ato_fence_gate()) takes two locks in
 * ShareLock, held to the end of its transaction (whatever savepoints it rolls
 * back): its account's key (24 bits of a hash of the id's bytes: ids compare
 * in C collation, so equal ids share it) and its account's bucket (one of
 * ATO_GATE_BUCKETS).  Only then does it read the account's flags, with the
 * newest snapshot.  Logins never conflict with each other.  One transaction
 * may gate at most ATO_GATE_MAX_PER_TRANSACTION accounts, so that no session
 * can hold the gates of many accounts at once.
 *
 * A revocation (ato_fence_accounts(), called before its revocation time is
 * taken) takes in ExclusiveLock the keys of its accounts, or, past
 * ATO_FENCE_ACCOUNT_KEYS accounts, their buckets, until its transaction
 * ends.  It never queues: it takes them all conditionally, and when one is
 * held by a login still in its transaction it lets go of those it took,
 * waits for the transactions then holding that one to end (on their virtual
 * transaction ids, as CREATE INDEX CONCURRENTLY does: no one queues behind
 * that) and tries again, for at most ato_response.revocation_fence_timeout.  So a revocation never holds one
 * lock while waiting for another (no deadlock with a login that gates two
 * accounts), and a login only ever waits behind a revocation that holds its
 * key or bucket, never behind one that waits.
 *
 * Once it holds them, every login that passed the gate before has ended
 * (with the sessions it issued, stamped with the gate's clock), and every
 * later one waits until the revocation commits and then reads its flags.
 * A revocation over buckets (a large incident) holds the logins of about
 * every account for as long as its transaction lasts, so it leaves the
 * marking to the background worker (src/revoke.c).  The lock tags are the
 * extension's own (include/locks.h): no role can take them from SQL.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ato_response.h"
#include "arguments.h"
#include "fence.h"
#include "locks.h"

/* Accounts one transaction may pass through the gate. */
#define ATO_GATE_MAX_PER_TRANSACTION 16

static uint32
account_hash(text *user_id)
{
	return hash_bytes((const unsigned char *) VARDATA_ANY(user_id), VARSIZE_ANY_EXHDR(user_id));
}

static void
account_tag(LOCKTAG *tag, uint32 hash)
{
	ato_keyed_lock_tag(tag, ATO_LOCK_LOGIN_ACCOUNT, hash & 0xFFFFFF);
}

static void
bucket_tag(LOCKTAG *tag, uint32 hash)
{
	ato_keyed_lock_tag(tag, ATO_LOCK_LOGIN_GATE, hash % ATO_GATE_BUCKETS);
}

static int
compare_tags(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(LOCKTAG));
}

/*
 * Try to take every tag in ExclusiveLock without waiting; on the first that
 * is held by someone else, let go of those this attempt took and return it.
 */
static const LOCKTAG *
try_fence(const LOCKTAG *tags, int ntags, bool *taken)
{
	for (int i = 0; i < ntags; i++)
	{
		LockAcquireResult result = LockAcquire(&tags[i], ExclusiveLock, false, true);

		if (result == LOCKACQUIRE_NOT_AVAIL)
		{
			for (int j = 0; j < i; j++)
				if (taken[j])
					LockRelease(&tags[j], ExclusiveLock, false);
			return &tags[i];
		}
		/* one this transaction held already stays held either way */
		taken[i] = result == LOCKACQUIRE_OK;
	}
	return NULL;
}

static void
fence_timed_out(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("a login of an account being revoked has been in its transaction for over %d ms",
					ato_revocation_fence_timeout),
			 errdetail("Its session passed ato.login_gate() and may still issue a session; the revocation waits for it to end so that the session is revoked too."),
			 errhint("Find it with SELECT pid, state, xact_start FROM pg_stat_activity WHERE pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 16724 AND mode = 'ShareLock'), end it, and revoke again: repeating is harmless.")));
}

/*
 * Wait for the transactions that hold the tag now to end (a lock wait that
 * pg_locks shows, on their virtual transaction ids, and that queues no one
 * behind it), for at most remaining ms (0: no limit of ours).
 */
static void
wait_for_holders(const LOCKTAG *tag, long remaining)
{
	int			nest = NewGUCNestLevel();

	if (remaining > 0)
		(void) set_config_option("lock_timeout", psprintf("%ld", remaining), PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		WaitForLockers(*tag, ExclusiveLock, false);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		if (remaining <= 0)
			PG_RE_THROW();
		error = CopyErrorData();
		if (error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		fence_timed_out();
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nest);
}

bool
ato_fence_accounts(Datum *user_ids, int naccounts)
{
	bool		by_bucket = naccounts > ATO_FENCE_ACCOUNT_KEYS;
	LOCKTAG    *tags = palloc(sizeof(LOCKTAG) * (by_bucket ? ATO_GATE_BUCKETS : Max(naccounts, 1)));
	bool	   *taken;
	int			ntags = 0;
	TimestampTz started = GetCurrentTimestamp();

	if (by_bucket)
	{
		bool	   *used = palloc0(sizeof(bool) * ATO_GATE_BUCKETS);

		for (int i = 0; i < naccounts; i++)
			used[account_hash(DatumGetTextPP(user_ids[i])) % ATO_GATE_BUCKETS] = true;
		for (uint32 bucket = 0; bucket < ATO_GATE_BUCKETS; bucket++)
			if (used[bucket])
				bucket_tag(&tags[ntags++], bucket);
		pfree(used);
	}
	else
	{
		for (int i = 0; i < naccounts; i++)
			account_tag(&tags[ntags++], account_hash(DatumGetTextPP(user_ids[i])));
		qsort(tags, ntags, sizeof(LOCKTAG), compare_tags);
		/* two accounts may share a key: take it once (a second take would count twice) */
		if (ntags > 1)
		{
			int			kept = 1;

			for (int i = 1; i < ntags; i++)
				if (compare_tags(&tags[kept - 1], &tags[i]) != 0)
					tags[kept++] = tags[i];
			ntags = kept;
		}
	}
	taken = palloc(sizeof(bool) * Max(ntags, 1));

	for (;;)
	{
		const LOCKTAG *busy = try_fence(tags, ntags, taken);
		long		remaining = 0;

		if (busy == NULL)
			break;
		if (ato_revocation_fence_timeout > 0)
		{
			remaining = ato_revocation_fence_timeout -
				TimestampDifferenceMilliseconds(started, GetCurrentTimestamp());
			if (remaining <= 0)
				fence_timed_out();
		}
		wait_for_holders(busy, remaining);
	}
	pfree(taken);
	pfree(tags);
	return by_bucket;
}

void
ato_fence_gate(text *user_id)
{
	static LocalTransactionId counted_in = InvalidLocalTransactionId;
	static int	gated = 0;
	uint32		hash = account_hash(user_id);
	LOCKTAG		bucket;
	LOCKTAG		account;
	ResourceOwner saved = CurrentResourceOwner;
	LockAcquireResult result;

	if (counted_in != MyProc->lxid)
	{
		counted_in = MyProc->lxid;
		gated = 0;
	}
	bucket_tag(&bucket, hash);
	account_tag(&account, hash);
	if (gated >= ATO_GATE_MAX_PER_TRANSACTION && !LockHeldByMe(&account, ShareLock))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("login_gate: one transaction may pass at most %d accounts through the gate",
						ATO_GATE_MAX_PER_TRANSACTION),
				 errhint("Call ato.login_gate() in the transaction of one login, the one that issues its session; to look at many accounts' flags, read ato.account_flags.")));

	/* held to the end of the transaction, whatever savepoint is rolled back */
	CurrentResourceOwner = TopTransactionResourceOwner;
	PG_TRY();
	{
		(void) LockAcquire(&bucket, ShareLock, false, false);
		result = LockAcquire(&account, ShareLock, false, false);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = saved;
	}
	PG_END_TRY();
	if (result == LOCKACQUIRE_OK)
		gated++;
}

/*
 * ato.hold_login_gates(user_ids text[]): the fence for the SQL functions that
 * set an account's flags outside an incident (ato.set_account_flags()).
 */
PG_FUNCTION_INFO_V1(ato_hold_login_gates);
Datum
ato_hold_login_gates(PG_FUNCTION_ARGS)
{
	ArrayType  *ids;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	ids = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_ELEMTYPE(ids) != TEXTOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("hold_login_gates: user_ids must be a text array"),
				 errhint("Pass the account ids as text[].")));
	deconstruct_array(ids, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	{
		int			kept = 0;

		for (int i = 0; i < n; i++)
			if (!nulls[i])
				elems[kept++] = elems[i];
		(void) ato_fence_accounts(elems, kept);
	}
	PG_RETURN_VOID();
}

/*
 * ato.login_gate_flags(user_id text) RETURNS ato.account_flags: for
 * ato.login_gate(), the account's flags read after the gate's lock is held,
 * with the newest snapshot, so that a revocation that committed while the
 * gate waited for it is seen whatever the caller's isolation level.  NULL
 * when the account has no flags.
 */
PG_FUNCTION_INFO_V1(ato_login_gate_flags);
Datum
ato_login_gate_flags(PG_FUNCTION_ARGS)
{
	static const char sql[] =
		"SELECT f.* FROM ato.account_flags f"
		" WHERE f.user_id OPERATOR(pg_catalog.=) $1 COLLATE pg_catalog.\"C\"";
	text	   *user_id;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	static SPIPlanPtr plan = NULL;
	Datum		result = (Datum) 0;
	bool		found;
	MemoryContext upper;

	ato_check_account_id("login_gate", "user_id", PG_ARGISNULL(0), PG_GETARG_DATUM(0));
	user_id = PG_GETARG_TEXT_PP(0);

	ato_fence_gate(user_id);

	upper = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		/* kept for the session, one generic plan: it sits in every login's path */
		SPIPlanPtr	fresh = SPI_prepare_cursor(sql, 1, argtypes, CURSOR_OPT_GENERIC_PLAN);

		if (fresh == NULL || SPI_keepplan(fresh) != 0)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		plan = fresh;
	}
	values[0] = PointerGetDatum(user_id);
	if (SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading the account's flags failed");
	found = SPI_processed > 0;
	if (found)
	{
		/* a datum of the declared row type, not an anonymous record */
		TupleDesc	desc;
		MemoryContext spi = MemoryContextSwitchTo(upper);

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		result = heap_copy_tuple_as_datum(SPI_tuptable->vals[0], BlessTupleDesc(desc));
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
