/*
 * revoke.c
 *     ato.revoke_incident(): containment first, then the marking of the
 *     application's rows in batches; ato.resume_incidents(); and the
 *     containment of accounts added to an incident later
 *     (ato.contain_incident_accounts(), for ato.add_incident_accounts()).
 *
 * Containment is one set of statements in the caller's transaction: the
 * incident row (its accounts sorted and without duplicates), a revocation
 * time for every account (ato.session_revoked() rejects what was issued
 * before it) and the account flags (suspension among them), so that they
 * commit together.  The revocation time is taken after the revocation fence
 * (src/fence.c): every login that passed ato.login_gate() before has ended,
 * and every later one waits until this transaction commits.  The marking
 * then goes through the accounts in batches of
 * ato_response.revocation_batch_size: each batch marks every registered table
 * (src/targets.c), records its accounts in ato.revocation_outbox at the next
 * position, sends that position on ato_response.revocation_channel and advances
 * the incident's progress, all in one transaction.  Up to
 * ato_response.inline_marking_limit accounts (and no more than the fence
 * holds account by account) this happens in the caller's transaction;
 * beyond it a background worker does one batch per transaction
 * (src/incident_worker.c), and the call returns as soon as containment is
 * done.  The incident's record (13_incident_record.sql) records the stage
 * "contained" in the same transaction.
 *
 * Accounts added later go through the same containment (the fence, their
 * revocation time, the incident's flags and reason) and the same batches
 * (marked under the incident's id, announced in the outbox), always in the
 * caller's transaction and at most ATO_FENCE_ACCOUNT_KEYS at a time, so that
 * they are fenced account by account; their batches leave the incident's
 * own progress (its opening's batches) as it is.
 *
 * Lock order: every writer of an account's rows first locks the account's
 * ato.account_revocations row, accounts in ascending (C collation) order:
 * containment through its ordered upsert, a worker batch through an ordered
 * SELECT ... FOR UPDATE.  Two incidents over the same accounts therefore
 * wait for each other instead of deadlocking, and the second finds the rows
 * already marked (the statements only touch rows still active).  The row of
 * ato.revocation_outbox_state comes last, after a batch's marks: it
 * serializes the outbox's writers from there to their commit, which is what
 * makes its positions commit-ordered.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ato_response.h"
#include "fence.h"
#include "identifiers.h"
#include "response.h"
#include "workers.h"

/* NOTIFY refuses payloads this long or longer (async.c keeps the limit private). */
#define NOTIFY_PAYLOAD_LIMIT (BLCKSZ - NAMEDATALEN - 128)


static void
spi_check(int ret, int expected, const char *what)
{
	if (ret != expected)
		elog(ERROR, "%s failed: %s", what, SPI_result_code_string(ret));
}

static ArrayType *
text_array(Datum *elems, int n)
{
	return construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* ---------------------------------------------------------------------
 * Arguments
 * ---------------------------------------------------------------------
 */

/* Byte order, which is the order of COLLATE "C" used by the tables. */
static int
compare_account_ids(const void *a, const void *b)
{
	text	   *ta = DatumGetTextPP(*(const Datum *) a);
	text	   *tb = DatumGetTextPP(*(const Datum *) b);
	int			la = VARSIZE_ANY_EXHDR(ta);
	int			lb = VARSIZE_ANY_EXHDR(tb);
	int			cmp = memcmp(VARDATA_ANY(ta), VARDATA_ANY(tb), Min(la, lb));

	return cmp != 0 ? cmp : (la > lb) - (la < lb);
}

/*
 * The accounts of a revoke_incident() call: sorted, without duplicates.
 * NULL, empty, multi-dimensional arrays, NULL, empty or over-long ids are
 * errors.
 */
static Datum *
incident_accounts_arg(FunctionCallInfo fcinfo, int argno, const char *caller, int *naccounts, int *duplicates)
{
	static const char hint[] = "Pass the affected accounts, for example ARRAY['alice', 'bob'] or the user_id column of a detection.";
	ArrayType  *array;
	Datum	   *ids;
	bool	   *nulls;
	int			n;
	int			kept = 0;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: user_ids must not be NULL", caller),
				 errhint("%s", hint)));
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s: user_ids must be a one-dimensional array", caller),
				 errhint("%s", hint)));
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &ids, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: user_ids is empty", caller),
				 errhint("%s", hint)));
	for (int i = 0; i < n; i++)
	{
		int			length;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s: user_ids[%d] is NULL", caller, i + 1),
					 errhint("Remove the NULL elements, for example with array_remove(ids, NULL).")));
		length = VARSIZE_ANY_EXHDR(DatumGetTextPP(ids[i]));
		if (length == 0 || length > ATO_MAX_ACCOUNT_ID_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: user_ids[%d] is %s", caller, i + 1,
							length == 0 ? "empty" : "longer than 1000 bytes"),
					 errhint("Account ids are between 1 and 1000 bytes.")));
	}

	qsort(ids, n, sizeof(Datum), compare_account_ids);
	for (int i = 0; i < n; i++)
		if (kept == 0 || compare_account_ids(&ids[kept - 1], &ids[i]) != 0)
			ids[kept++] = ids[i];
	*naccounts = kept;
	*duplicates = n - kept;
	return ids;
}

static bool
flag_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("revoke_incident: %s must not be NULL", name),
				 errhint("Pass true or false.")));
	return PG_GETARG_BOOL(argno);
}

/* ---------------------------------------------------------------------
 * The outbox and its notification
 * ---------------------------------------------------------------------
 */

/* The shard's name (ato_response.shard_name), NULL on a single server (as ato.shard_name()). */
static const char *
shard_name(void)
{
	return ato_shard_name != NULL && ato_shard_name[0] != '\0' ? ato_shard_name : NULL;
}

/*
 * Record the batch's accounts in ato.revocation_outbox at the next position
 * and return it.  The position comes from the one row of
 * ato.revocation_outbox_state, which this update keeps locked until the
 * transaction ends: a concurrent batch of another incident waits here and
 * takes the next position only once this one is visible, so positions are
 * given out in commit order and without gaps (a rollback gives its position
 * back).  Taken after the batch's marks, as the last lock of the batch, so
 * that it is held only from here to the commit.
 */
static int64
record_outbox(const IncidentRun *run, int batch, Datum *ids, int nids)
{
	static const char sql[] =
		"WITH next AS ("
		"    INSERT INTO ato.revocation_outbox_state AS s (singleton, last_position) VALUES (true, 1)"
		"    ON CONFLICT (singleton) DO UPDATE SET last_position = s.last_position + 1"
		"    RETURNING s.last_position)"
		" INSERT INTO ato.revocation_outbox (position, incident_id, batch, batches, revoked_at, user_ids, shard)"
		" SELECT next.last_position, $1, $2, $3, $4, $5, $6 FROM next"
		" RETURNING position";
	Oid			argtypes[6] = {UUIDOID, INT4OID, INT4OID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = "      ";
	bool		isnull;

	values[0] = UUIDPGetDatum(&run->id);
	values[1] = Int32GetDatum(batch + 1);
	values[2] = Int32GetDatum(run->batches);
	values[3] = TimestampTzGetDatum(run->revoked_at);
	values[4] = PointerGetDatum(text_array(ids, nids));
	if (shard_name() != NULL)
		values[5] = CStringGetTextDatum(shard_name());
	else
		nulls[5] = 'n';
	spi_check(SPI_execute_with_args(sql, 6, argtypes, values, nulls, false, 1),
			  SPI_OK_INSERT_RETURNING, "recording the batch in the outbox");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Wake the listeners of the incident's channel: {"incident", "position",
 * "batch", "batches", "accounts"}, and "shard" (ato_response.shard_name)
 * when it is set, no account id (anyone may LISTEN, and anyone may send a
 * NOTIFY: the payload is a hint to read the outbox, which only granted roles
 * can).  Sent at commit, so nothing goes out for a rollback; far under the
 * payload limit (the setting takes a shard's name of at most 200 bytes).
 */
static void
notify_batch(const IncidentRun *run, int batch, int64 position, int nids)
{
	char	   *incident = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&run->id)));
	StringInfoData payload;

	initStringInfo(&payload);
	appendStringInfo(&payload, "{\"incident\":\"%s\",\"position\":" INT64_FORMAT
					 ",\"batch\":%d,\"batches\":%d,\"accounts\":%d",
					 incident, position, batch + 1, run->batches, nids);
	if (shard_name() != NULL)
	{
		appendStringInfoString(&payload, ",\"shard\":");
		escape_json(&payload, shard_name());
	}
	appendStringInfoChar(&payload, '}');
	Assert(payload.len < NOTIFY_PAYLOAD_LIMIT);
	Async_Notify(run->channel, payload.data);
}

/* ---------------------------------------------------------------------
 * One batch
 * ---------------------------------------------------------------------
 */

/* Add the batch's outcome per target to ato.incident_targets; warn on a first failure. */
static void
record_target_results(const IncidentRun *run, RevocationTarget *targets, int ntargets, int nids)
{
	static const char sql[] =
		"UPDATE ato.incident_targets it"
		"   SET rows_touched = it.rows_touched + v.touched,"
		"       failed_batches = it.failed_batches + (v.error IS NOT NULL)::int,"
		"       last_error = coalesce(v.error, it.last_error),"
		"       mismatched_ids = it.mismatched_ids + v.mismatched"
		"  FROM unnest($2::int[], $3::bigint[], $4::text[], $5::bigint[]) AS v(target_id, touched, error, mismatched)"
		" WHERE it.incident_id = $1 AND it.target_id = v.target_id"
		" RETURNING it.target_name, v.error, it.failed_batches, v.mismatched,"
		"           (SELECT pg_catalog.format_type(a.atttypid, NULL)"
		"              FROM pg_catalog.pg_attribute a JOIN ato.revocation_targets t"
		"                ON a.attrelid OPERATOR(pg_catalog.=) t.target"
		"               AND a.attname OPERATOR(pg_catalog.=) t.user_column"
		"             WHERE t.id OPERATOR(pg_catalog.=) it.target_id)";
	Oid			argtypes[5] = {UUIDOID, INT4ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	Datum		values[5];
	Datum	   *ids = palloc(sizeof(Datum) * ntargets);
	Datum	   *rows = palloc(sizeof(Datum) * ntargets);
	Datum	   *mismatched = palloc(sizeof(Datum) * ntargets);
	Datum	   *errors = palloc(sizeof(Datum) * ntargets);
	bool	   *error_nulls = palloc(sizeof(bool) * ntargets);
	int			dims[1] = {ntargets};
	int			lbs[1] = {1};

	if (ntargets == 0)
		return;
	for (int i = 0; i < ntargets; i++)
	{
		ids[i] = Int32GetDatum(targets[i].id);
		rows[i] = Int64GetDatum(targets[i].rows);
		mismatched[i] = Int64GetDatum(targets[i].mismatched);
		error_nulls[i] = targets[i].error == NULL;
		errors[i] = error_nulls[i] ? (Datum) 0 : CStringGetTextDatum(targets[i].error);
	}
	values[0] = UUIDPGetDatum(&run->id);
	values[1] = PointerGetDatum(construct_array(ids, ntargets, INT4OID, 4, true, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(rows, ntargets, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = PointerGetDatum(construct_md_array(errors, error_nulls, 1, dims, lbs, TEXTOID, -1, false,
												   TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_array(mismatched, ntargets, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	spi_check(SPI_execute_with_args(sql, 5, argtypes, values, NULL, false, 0),
			  SPI_OK_UPDATE_RETURNING, "recording the incident's progress per target");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *error = SPI_getvalue(tuple, desc, 2);
		int64		mismatched;
		bool		isnull;

		if (error != NULL && strcmp(SPI_getvalue(tuple, desc, 3), "1") == 0)
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("revoke_incident: marking table %s failed: %s",
							SPI_getvalue(tuple, desc, 1), error),
					 errdetail("The accounts are revoked and flagged all the same; the other tables are marked."),
					 errhint("Fix or re-register the table, then call ato.revoke_incident() again for the incident's accounts: revoking again is harmless.")));
		/* loud when none of the batch's ids can match (e-mail addresses for bigint ids) */
		mismatched = DatumGetInt64(SPI_getbinval(tuple, desc, 4, &isnull));
		if (mismatched > 0)
			ereport(mismatched == nids ? WARNING : NOTICE,
					(errcode(ERRCODE_WARNING),
					 errmsg("revoke_incident: " INT64_FORMAT " of the batch's %d ids are not valid %s values, the type of table %s's account column: none of its rows were marked for them",
							mismatched, nids, SPI_getvalue(tuple, desc, 5), SPI_getvalue(tuple, desc, 1)),
					 errdetail("The accounts are revoked and flagged all the same; ato.incident_targets.mismatched_ids counts them."),
					 errhint("Pass the ids the table holds (for example its numeric ids rather than e-mail addresses), or register the table by a column that holds these ids.")));
	}
}

/*
 * Mark the registered tables for batch "batch" (0-based) of the incident,
 * record its accounts in the outbox, notify its position and count it done.  lock_accounts: take the accounts'
 * revocation rows first (a caller whose containment took them already in
 * this transaction need not).  Needs SPI.
 */
void
incident_mark_batch(const IncidentRun *run, int batch, bool lock_accounts)
{
	static const char lock_sql[] =
		"SELECT FROM ato.account_revocations r WHERE r.user_id = ANY ($1)"
		" ORDER BY r.user_id FOR UPDATE";
	static const char progress_sql[] =
		"UPDATE ato.incidents i"
		"   SET batches_done = $2,"
		"       status = CASE WHEN $2 >= i.batches THEN 'contained' ELSE i.status END,"
		"       marked_at = CASE WHEN $2 >= i.batches THEN clock_timestamp() END"
		" WHERE i.id = $1";
	int			first = batch * run->batch_size;
	int			nids = Min(run->batch_size, run->accounts - first);
	Datum	   *ids = run->user_ids + first;
	RevocationTarget *targets;
	int			ntargets;
	Oid			argtypes[2] = {UUIDOID, INT4OID};
	Datum		values[2];

	Assert(nids > 0);
	if (lock_accounts)
	{
		Oid			lock_types[1] = {TEXTARRAYOID};
		Datum		lock_values[1] = {PointerGetDatum(text_array(ids, nids))};

		spi_check(SPI_execute_with_args(lock_sql, 1, lock_types, lock_values, NULL, false, 0),
				  SPI_OK_SELECT, "locking the batch's accounts");
	}

	targets = targets_of_incident(&run->id, &ntargets);
	for (int i = 0; i < ntargets; i++)
		target_mark_batch(&targets[i], run, ids, nids);
	record_target_results(run, targets, ntargets, nids);
	notify_batch(run, batch, record_outbox(run, batch, ids, nids), nids);

	/* an addition's batches are not the opening's: its caller records them */
	if (run->addition)
		return;
	values[0] = UUIDPGetDatum(&run->id);
	values[1] = Int32GetDatum(batch + 1);
	spi_check(SPI_execute_with_args(progress_sql, 2, argtypes, values, NULL, false, 0),
			  SPI_OK_UPDATE, "recording the incident's progress");
}

/*
 * Read an incident that is still marking, locking its row (so that two
 * workers never run the same batch).  False if it is not marking any more.
 * The run's memory is allocated in the SPI procedure context.  Needs SPI.
 */
bool
incident_load(const pg_uuid_t *incident, IncidentRun *run, int *batches_done)
{
	static const char sql[] =
		"SELECT opened_at, reason, user_ids, delete_created_after, revocation_channel,"
		"       batch_size, batches, batches_done"
		"  FROM ato.incidents WHERE id = $1 AND status = 'marking' FOR UPDATE";
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(incident)};
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		value;
	bool	   *nulls;

	spi_check(SPI_execute_with_args(sql, 1, argtypes, values, NULL, false, 1),
			  SPI_OK_SELECT, "reading the incident");
	if (SPI_processed == 0)
		return false;
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	memset(run, 0, sizeof(*run));
	run->id = *incident;
	run->revoked_at = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 1, &isnull));
	run->reason = DatumGetTextPCopy(SPI_getbinval(tuple, desc, 2, &isnull));
	value = SPI_getbinval(tuple, desc, 3, &isnull);
	deconstruct_array(DatumGetArrayTypePCopy(value), TEXTOID, -1, false, TYPALIGN_INT,
					  &run->user_ids, &nulls, &run->accounts);
	value = SPI_getbinval(tuple, desc, 4, &isnull);
	run->has_created_after = !isnull;
	run->delete_created_after = isnull ? 0 : DatumGetTimestampTz(value);
	run->channel = SPI_getvalue(tuple, desc, 5);
	run->batch_size = DatumGetInt32(SPI_getbinval(tuple, desc, 6, &isnull));
	run->batches = DatumGetInt32(SPI_getbinval(tuple, desc, 7, &isnull));
	*batches_done = DatumGetInt32(SPI_getbinval(tuple, desc, 8, &isnull));
	return true;
}

/* ---------------------------------------------------------------------
 * Containment
 * ---------------------------------------------------------------------
 */

/*
 * The containment of accounts proper, in the caller's transaction, after the
 * fence: their revocation time and their flags.  Both for the accounts an
 * incident opens with and for those added to it later
 * (ato.add_incident_accounts()), so that a late account is contained exactly
 * as the first ones.  The upsert of the revocation rows takes them in
 * account order (the lock order above).
 */
static void
contain_accounts(const IncidentRun *run, const bool flags[4])
{
	static const char revocations_sql[] =
		"INSERT INTO ato.account_revocations AS r (user_id, revoked_at, incident_id)"
		" SELECT u, $2, $1 FROM unnest($3::text[]) AS u"
		" ON CONFLICT (user_id) DO UPDATE"
		"   SET revoked_at = greatest(r.revoked_at, excluded.revoked_at),"
		"       incident_id = CASE WHEN excluded.revoked_at >= r.revoked_at"
		"                          THEN excluded.incident_id ELSE r.incident_id END";
	static const char flags_sql[] =
		"INSERT INTO ato.account_flags AS f (user_id, suspended, reauth_required,"
		"       mfa_reenrollment_required, password_reset_required, incident_id, reason, updated_at)"
		" SELECT u, $4, $5, $6, $7, $1, $8, $2 FROM unnest($3::text[]) AS u"
		" ON CONFLICT (user_id) DO UPDATE"
		"   SET suspended = f.suspended OR excluded.suspended,"
		"       reauth_required = f.reauth_required OR excluded.reauth_required,"
		"       mfa_reenrollment_required = f.mfa_reenrollment_required OR excluded.mfa_reenrollment_required,"
		"       password_reset_required = f.password_reset_required OR excluded.password_reset_required,"
		"       incident_id = excluded.incident_id, reason = excluded.reason,"
		"       updated_at = excluded.updated_at";
	Oid			flag_types[8] = {UUIDOID, TIMESTAMPTZOID, TEXTARRAYOID, BOOLOID, BOOLOID, BOOLOID,
		BOOLOID, TEXTOID};
	Datum		flag_values[8];

	flag_values[0] = UUIDPGetDatum(&run->id);
	flag_values[1] = TimestampTzGetDatum(run->revoked_at);
	flag_values[2] = PointerGetDatum(text_array(run->user_ids, run->accounts));
	spi_check(SPI_execute_with_args(revocations_sql, 3, flag_types, flag_values, NULL, false, 0),
			  SPI_OK_INSERT, "recording the accounts' revocation time");

	if (flags[0] || flags[1] || flags[2] || flags[3])
	{
		for (int i = 0; i < 4; i++)
			flag_values[3 + i] = BoolGetDatum(flags[i]);
		flag_values[7] = PointerGetDatum(run->reason);
		spi_check(SPI_execute_with_args(flags_sql, 8, flag_types, flag_values, NULL, false, 0),
				  SPI_OK_INSERT, "setting the accounts' flags");
	}
}

/*
 * Open the incident and contain its accounts in the caller's transaction:
 * the incident row, the revocation times, the flags, the incident's targets.
 * Fills run->id.
 *
 * An account counts as unknown when the event store holds no successful
 * login of it from a located address: neither the summaries
 * (ato.account_countries) nor the stretch they do not cover yet (from the
 * watermark or the first late day on, read from the event store as the
 * detection functions do), so that the count is exact however far the
 * summaries lag.  Logins from addresses no GeoIP database places are not
 * summarised and are not counted.
 */
static void
contain_incident(IncidentRun *run, int duplicates, const bool flags[4], bool in_background)
{
	static const char incident_sql[] =
		"INSERT INTO ato.incidents (id, opened_at, opened_by, reason, user_ids, duplicate_ids, unknown_ids,"
		"       suspend, reauth_required, mfa_reenrollment_required, password_reset_required,"
		"       delete_created_after, revocation_channel, batch_size, batches, in_background, status)"
		" VALUES (coalesce($14, gen_random_uuid()), $1, session_user, $2, $3, $4,"
		"         (SELECT count(*) FROM unnest($3) AS u(user_id)"
		"           WHERE NOT EXISTS (SELECT FROM ato.account_countries c WHERE c.user_id = u.user_id)"
		"             AND NOT EXISTS (SELECT FROM ato.login_events e"
		"                              WHERE e.user_id = u.user_id AND e.outcome = 'success'"
		"                                AND e.country_code IS NOT NULL"
		"                                AND e.occurred_at >= (SELECT least(s.summarised_until, s.late_from)"
		"                                                        FROM ato.summary_status s))),"
		"         $5, $6, $7, $8, $9, $10, $11, $12, $13, 'marking')"
		" RETURNING id, unknown_ids";
	static const char targets_sql[] =
		"INSERT INTO ato.incident_targets (incident_id, target_id, target_name)"
		" SELECT $1, t.id, t.target_name FROM ato.revocation_targets t";
	static const char log_sql[] =
		"INSERT INTO ato.response_log (action, incident_id, detail)"
		" VALUES ('incident_opened', $1, $2)";
	Oid			incident_types[14] = {TIMESTAMPTZOID, TEXTOID, TEXTARRAYOID, INT4OID, BOOLOID, BOOLOID,
		BOOLOID, BOOLOID, TIMESTAMPTZOID, TEXTOID, INT4OID, INT4OID, BOOLOID, UUIDOID};
	Datum		incident_values[14];
	char		incident_nulls[14];
	Oid			target_types[1] = {UUIDOID};
	Datum		target_values[1];
	Datum		accounts = PointerGetDatum(text_array(run->user_ids, run->accounts));
	Oid			log_types[2] = {UUIDOID, TEXTOID};
	Datum		log_values[2];
	int64		unknown;
	bool		isnull;

	memset(incident_nulls, ' ', sizeof(incident_nulls));
	incident_values[0] = TimestampTzGetDatum(run->revoked_at);
	incident_values[1] = PointerGetDatum(run->reason);
	incident_values[2] = accounts;
	incident_values[3] = Int32GetDatum(duplicates);
	for (int i = 0; i < 4; i++)
		incident_values[4 + i] = BoolGetDatum(flags[i]);
	incident_values[8] = TimestampTzGetDatum(run->delete_created_after);
	if (!run->has_created_after)
		incident_nulls[8] = 'n';
	incident_values[9] = CStringGetTextDatum(run->channel);
	incident_values[10] = Int32GetDatum(run->batch_size);
	incident_values[11] = Int32GetDatum(run->batches);
	incident_values[12] = BoolGetDatum(in_background);
	/* the caller's id (one incident across shards), or a new one */
	incident_values[13] = run->given_id ? UUIDPGetDatum(&run->id) : (Datum) 0;
	if (!run->given_id)
		incident_nulls[13] = 'n';
	spi_check(SPI_execute_with_args(incident_sql, 14, incident_types, incident_values, incident_nulls,
									false, 1),
			  SPI_OK_INSERT_RETURNING, "opening the incident");
	run->id = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	unknown = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

	contain_accounts(run, flags);

	target_values[0] = UUIDPGetDatum(&run->id);
	spi_check(SPI_execute_with_args(targets_sql, 1, target_types, target_values, NULL, false, 0),
			  SPI_OK_INSERT, "listing the incident's tables");

	log_values[0] = UUIDPGetDatum(&run->id);
	log_values[1] = CStringGetTextDatum(psprintf("%d accounts (%d duplicate ids ignored, " INT64_FORMAT " without a successful login on record)%s%s%s%s",
												 run->accounts, duplicates, unknown,
												 flags[0] ? ", suspended" : "",
												 flags[1] ? ", reauth_required" : "",
												 flags[2] ? ", mfa_reenrollment_required" : "",
												 flags[3] ? ", password_reset_required" : ""));
	spi_check(SPI_execute_with_args(log_sql, 2, log_types, log_values, NULL, false, 0),
			  SPI_OK_INSERT, "logging the incident");

	if (duplicates > 0 || unknown > 0)
		ereport(NOTICE,
				(errmsg("revoke_incident: %d accounts revoked; %d duplicate ids ignored, " INT64_FORMAT
						" accounts have no successful login on record",
						run->accounts, duplicates, unknown),
				 errhint("Accounts without a login on record are revoked all the same; check their ids if that is unexpected.")));
}

/*
 * A retry with the id of an incident that is open already: the same
 * accounts make it a no-op (its marking resumes if it was left to a worker
 * that is gone), other accounts an error.  Needs SPI.
 */
static bool
incident_already_open(const IncidentRun *run)
{
	static const char sql[] =
		"SELECT i.user_ids OPERATOR(pg_catalog.=) $2, i.status OPERATOR(pg_catalog.=) 'marking'"
		"  FROM ato.incidents i WHERE i.id OPERATOR(pg_catalog.=) $1";
	Oid			types[2] = {UUIDOID, TEXTARRAYOID};
	Datum		values[2] = {UUIDPGetDatum(&run->id), PointerGetDatum(text_array(run->user_ids, run->accounts))};
	bool		isnull;
	char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&run->id)));

	spi_check(SPI_execute_with_args(sql, 2, types, values, NULL, true, 1), SPI_OK_SELECT,
			  "looking the incident up");
	if (SPI_processed == 0)
		return false;
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("revoke_incident: incident %s exists with other accounts", id),
				 errhint("A retry gives the same accounts as the first call; for other accounts, open a new incident (give no incident_id, or a new one).")));
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
		(void) incident_worker_launch(MyDatabaseId, GetTopTransactionIdIfAny());
	ereport(NOTICE,
			(errmsg("revoke_incident: incident %s is open already for these accounts; nothing was done again", id),
			 errhint("Its progress is in ato.incident_progress.")));
	return true;
}

/*
 * The incident's record (install/sections/13_incident_record.sql) takes the
 * stage "contained" from here, in the same transaction: one opened without a
 * report gets its record now.  Needs SPI.
 */
static void
record_containment(const pg_uuid_t *incident)
{
	static const char sql[] = "SELECT ato.record_containment($1)";
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(incident)};

	spi_check(SPI_execute_with_args(sql, 1, types, values, NULL, false, 0), SPI_OK_SELECT,
			  "recording the containment in the incident's record");
}

PG_FUNCTION_INFO_V1(ato_revoke_incident);
Datum
ato_revoke_incident(PG_FUNCTION_ARGS)
{
	IncidentRun run;
	int			duplicates;
	bool		flags[4];
	bool		in_background;
	pg_uuid_t  *result;

	memset(&run, 0, sizeof(run));
	run.user_ids = incident_accounts_arg(fcinfo, 0, "revoke_incident", &run.accounts, &duplicates);
	if (PG_ARGISNULL(1) || VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(1)) == 0)
		ereport(ERROR,
				(errcode(PG_ARGISNULL(1) ? ERRCODE_NULL_VALUE_NOT_ALLOWED : ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("revoke_incident: reason must not be %s", PG_ARGISNULL(1) ? "NULL" : "empty"),
				 errhint("Say why, for example 'credential stuffing from 192.0.2.0/24'; it is stored with the incident and on every marked row.")));
	run.reason = PG_GETARG_TEXT_P(1);
	flags[0] = flag_arg(fcinfo, 2, "suspend");
	flags[1] = flag_arg(fcinfo, 3, "reauth_required");
	flags[2] = flag_arg(fcinfo, 4, "mfa_reenrollment_required");
	flags[3] = flag_arg(fcinfo, 5, "password_reset_required");
	run.has_created_after = !PG_ARGISNULL(6);
	run.delete_created_after = run.has_created_after ? PG_GETARG_TIMESTAMPTZ(6) : 0;

	if (PG_NARGS() > 7 && !PG_ARGISNULL(7))
	{
		run.given_id = true;
		run.id = *PG_GETARG_UUID_P(7);
	}

	run.channel = ato_revocation_channel;
	run.batch_size = ato_revocation_batch_size;
	run.batches = (run.accounts + run.batch_size - 1) / run.batch_size;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (run.given_id && incident_already_open(&run))
	{
		SPI_finish();
		result = palloc(sizeof(pg_uuid_t));
		*result = run.id;
		PG_RETURN_UUID_P(result);
	}

	/*
	 * Only now: every login that passed the gate before has issued its
	 * sessions.  Fenced by bucket, this transaction holds up about every
	 * login until it commits, so it leaves the marking to the worker.
	 */
	in_background = ato_fence_accounts(run.user_ids, run.accounts) ||
		run.accounts > ato_inline_marking_limit;
	run.revoked_at = GetCurrentTimestamp();

	contain_incident(&run, duplicates, flags, in_background);
	record_containment(&run.id);

	if (!in_background)
	{
		for (int batch = 0; batch < run.batches; batch++)
		{
			CHECK_FOR_INTERRUPTS();
			incident_mark_batch(&run, batch, false);
		}
	}
	else if (incident_worker_launch(MyDatabaseId, GetTopTransactionId()))
		ereport(NOTICE,
				(errmsg("revoke_incident: %d accounts are contained; a background worker marks their rows once this transaction commits",
						run.accounts),
				 errhint("Follow it in ato.incident_progress.")));
	else
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("revoke_incident: %d accounts are contained, but no background worker could be started to mark their rows",
						run.accounts),
				 errhint("Raise max_worker_processes, or call ato.resume_incidents() after this transaction commits.")));

	SPI_finish();
	result = palloc(sizeof(pg_uuid_t));
	*result = run.id;
	PG_RETURN_UUID_P(result);
}

/* ---------------------------------------------------------------------
 * Accounts added to an open incident
 * ---------------------------------------------------------------------
 */

/*
 * ato.contain_incident_accounts(incident_id uuid, user_ids text[]) RETURNS
 * integer: for ato.add_incident_accounts(), which checks the record and
 * keeps the scope.  Contains the accounts as the incident's first ones were
 * (the fence, then a revocation time of now, the incident's flags and
 * reason, its tables marked in its batches, announced in the outbox with the
 * incident's id), always in the caller's transaction: at most as many
 * accounts as the fence takes one by one, so that no login of another
 * account waits for it.  The incident's own progress (its opening's batches)
 * is left as it is.  Returns the accounts contained.
 */
PG_FUNCTION_INFO_V1(ato_contain_incident_accounts);
Datum
ato_contain_incident_accounts(PG_FUNCTION_ARGS)
{
	static const char incident_sql[] =
		"SELECT i.reason, i.suspend, i.reauth_required, i.mfa_reenrollment_required,"
		"       i.password_reset_required, i.delete_created_after, i.revocation_channel"
		"  FROM ato.incidents i WHERE i.id OPERATOR(pg_catalog.=) $1";
	IncidentRun run;
	int			duplicates;
	bool		flags[4];
	bool		isnull;
	Datum		value;
	HeapTuple	tuple;
	TupleDesc	desc;
	Oid			types[1] = {UUIDOID};
	Datum		values[1];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("add_incident_accounts: incident_id must not be NULL"),
				 errhint("Pass the id ato.revoke_incident() returned; the incidents are in ato.incidents.")));
	memset(&run, 0, sizeof(run));
	run.id = *PG_GETARG_UUID_P(0);
	run.given_id = true;
	run.addition = true;
	run.user_ids = incident_accounts_arg(fcinfo, 1, "add_incident_accounts", &run.accounts, &duplicates);
	if (run.accounts > ATO_FENCE_ACCOUNT_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("add_incident_accounts: %d accounts are more than one addition contains (%d)",
						run.accounts, ATO_FENCE_ACCOUNT_KEYS),
				 errhint("Add them in parts of at most %d accounts, or open a new incident for them with ato.revoke_incident(), which leaves the marking of many accounts to a background worker.",
						 ATO_FENCE_ACCOUNT_KEYS)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = UUIDPGetDatum(&run.id);
	spi_check(SPI_execute_with_args(incident_sql, 1, types, values, NULL, false, 1), SPI_OK_SELECT,
			  "reading the incident");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("add_incident_accounts: incident %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&run.id)))),
				 errhint("The incidents are in ato.incidents.")));
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	run.reason = DatumGetTextPCopy(SPI_getbinval(tuple, desc, 1, &isnull));
	for (int i = 0; i < 4; i++)
		flags[i] = DatumGetBool(SPI_getbinval(tuple, desc, 2 + i, &isnull));
	value = SPI_getbinval(tuple, desc, 6, &isnull);
	run.has_created_after = !isnull;
	run.delete_created_after = isnull ? 0 : DatumGetTimestampTz(value);
	run.channel = SPI_getvalue(tuple, desc, 7);
	run.batch_size = ato_revocation_batch_size;
	run.batches = (run.accounts + run.batch_size - 1) / run.batch_size;

	/* fenced one by one (at most ATO_FENCE_ACCOUNT_KEYS): never by bucket */
	(void) ato_fence_accounts(run.user_ids, run.accounts);
	run.revoked_at = GetCurrentTimestamp();
	contain_accounts(&run, flags);
	for (int batch = 0; batch < run.batches; batch++)
	{
		CHECK_FOR_INTERRUPTS();
		incident_mark_batch(&run, batch, false);
	}
	SPI_finish();
	PG_RETURN_INT32(run.accounts);
}

PG_FUNCTION_INFO_V1(ato_resume_incidents);
Datum
ato_resume_incidents(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(incident_worker_launch(MyDatabaseId, GetTopTransactionIdIfAny()));
}
