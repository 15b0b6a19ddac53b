/*
 * fence.c
 *     The revocation fence: no session that an application issues in the
 *     transaction of a login_gate() that said "ok" can outlive a revocation
 *     of its account that was in flight meanwhile.
 *
 * The accounts are spread over ATO_GATE_BUCKETS locks by a hash of their id's
 * bytes (the ids compare in C collation, so equal ids share a bucket).
 *
 * The gate (ato.login_gate() through ato_gate_account()) takes its account's
 * bucket in ShareLock until the application's transaction ends, and only then
 * reads the account's flags, with the newest snapshot.  Gates never conflict
 * with each other.
 *
 * A revocation (ato_fence_accounts(), called before the revocation time is
 * taken) first waits, without joining any lock queue, for the transactions
 * that hold a bucket of its accounts: the logins that passed the gate before
 * it and may still be issuing a session.  Then it takes the buckets in
 * ExclusiveLock, in ascending order (two revocations wait for each other
 * rather than deadlock), until its own transaction ends; the logins that
 * arrived meanwhile are waited for by that lock request.  So either a gate
 * got its bucket first, and its transaction (with every session it issued)
 * ended before the revocation time was taken, which then revokes them; or the
 * revocation got it first, and the gate waits until the revocation commits
 * and then reads its flags.
 *
 * What it costs a login: one lock, held to the end of its transaction; a
 * wait only while a revocation of an account in the same bucket is in
 * flight, for as long as its transaction takes to commit.  The lock tags are
 * the extension's own (include/locks.h): no role can take them from SQL.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/pg_list.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "fence.h"
#include "locks.h"

static uint32
account_bucket(text *user_id)
{
	return hash_bytes((const unsigned char *) VARDATA_ANY(user_id),
					  VARSIZE_ANY_EXHDR(user_id)) % ATO_GATE_BUCKETS;
}

static void
bucket_tag(LOCKTAG *tag, uint32 bucket)
{
	ato_keyed_lock_tag(tag, ATO_LOCK_LOGIN_GATE, bucket);
}

void
ato_fence_accounts(Datum *user_ids, int naccounts)
{
	bool	   *taken = palloc0(sizeof(bool) * ATO_GATE_BUCKETS);
	List	   *tags = NIL;
	ListCell   *cell;

	for (int i = 0; i < naccounts; i++)
		taken[account_bucket(DatumGetTextPP(user_ids[i]))] = true;
	for (uint32 bucket = 0; bucket < ATO_GATE_BUCKETS; bucket++)
	{
		LOCKTAG    *tag;

		if (!taken[bucket])
			continue;
		tag = palloc(sizeof(LOCKTAG));
		bucket_tag(tag, bucket);
		tags = lappend(tags, tag);
	}

	/* the logins that passed the gate already: wait, queueing no one */
	WaitForLockersMultiple(tags, ExclusiveLock, false);

	/* the ones that came since, and every later one until we commit */
	foreach(cell, tags)
		(void) LockAcquire((LOCKTAG *) lfirst(cell), ExclusiveLock, false, false);

	list_free_deep(tags);
	pfree(taken);
}

void
ato_fence_gate(text *user_id)
{
	LOCKTAG		tag;

	bucket_tag(&tag, account_bucket(user_id));
	(void) LockAcquire(&tag, ShareLock, false, false);
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
		ato_fence_accounts(elems, kept);
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

	/* as ato.check_account_id() */
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("login_gate: user_id must not be NULL"),
				 errhint("Pass the id of the account as text.")));
	user_id = PG_GETARG_TEXT_PP(0);
	if (VARSIZE_ANY_EXHDR(user_id) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("login_gate: user_id must not be empty"),
				 errhint("An empty string names no account; pass the id of the account.")));

	ato_fence_gate(user_id);

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
		result = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc));
	SPI_finish();
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
