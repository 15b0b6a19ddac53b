/*
 * incident_worker.c
 *     The background workers that mark the rows of large incidents, one
 *     batch per transaction, and the launcher that resumes them when the
 *     server starts.
 *
 * An incident worker serves one database.  Its states:
 *   1. waiting for the transaction that opened the incident to end (a
 *      worker started by ato.revoke_incident() is registered before that
 *      transaction commits; if it rolls back there is nothing to do);
 *   2. marking: one transaction per batch, the oldest incident still
 *      'marking' first; the batch locks the incident's row, so two workers
 *      never run the same batch, and records its progress in the same
 *      commit as its marks and its NOTIFY, so that a worker killed midway
 *      redoes at most the uncommitted batch and nothing is sent twice;
 *   3. exiting with status 0 once no incident is marking.
 * It is registered with a restart time: killed, or after a crash of the
 * server, it is started again and carries on from the last committed batch.
 *
 * The launcher exists only when the library is in shared_preload_libraries.
 * At server start, at every reload, and every minute for databases created
 * since, it starts the detection worker of each database in
 * ato_response.databases (src/detection_worker.c), which starts an incident
 * worker when a shutdown left an incident marking; without the launcher,
 * ato.resume_incidents() does that by hand.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "ato_response.h"
#include "compat.h"
#include "owner.h"
#include "response.h"

PGDLLEXPORT void ato_incident_worker_main(Datum arg);
PGDLLEXPORT void ato_incident_launcher_main(Datum arg);

/* What an incident worker is told at registration (bgw_extra). */
typedef struct IncidentWorkerArgs
{
	Oid			database;
	TransactionId wait_for;		/* the opening transaction, or invalid */
} IncidentWorkerArgs;

StaticAssertDecl(sizeof(IncidentWorkerArgs) <= BGW_EXTRALEN, "bgw_extra is too small");

/*
 * A worker of this library that connects to a database once recovery is
 * over: its entry function, its type (pg_stat_activity.backend_type, and its
 * name with the database) and how many seconds after a crash it restarts.
 */
void
ato_worker_init(BackgroundWorker *worker, const char *function, const char *type,
				Oid database, int restart_seconds)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = restart_seconds;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "ato_response");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
	if (OidIsValid(database))
		snprintf(worker->bgw_name, BGW_MAXLEN, "%s for database %u", type, database);
	else
		snprintf(worker->bgw_name, BGW_MAXLEN, "%s", type);
	worker->bgw_main_arg = ObjectIdGetDatum(database);
}

bool
incident_worker_launch(Oid database, TransactionId wait_for)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	IncidentWorkerArgs args = {database, wait_for};

	ato_worker_init(&worker, "ato_incident_worker_main", "ato_response incident worker", database, 5);
	memcpy(worker.bgw_extra, &args, sizeof(args));
	return RegisterDynamicBackgroundWorker(&worker, &handle);
}

/* Mark the next batch of the oldest incident still marking; false if none is. */
static bool
mark_next_batch(void)
{
	IncidentRun run;
	pg_uuid_t	incident;
	int			batches_done;
	bool		isnull;

	if (SPI_execute("SELECT id FROM ato.incidents WHERE status = 'marking'"
					" ORDER BY opened_at, id LIMIT 1", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "looking for incidents to mark failed");
	if (SPI_processed == 0)
		return false;
	incident = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!incident_load(&incident, &run, &batches_done))
		return true;			/* another worker finished it meanwhile */
	if (batches_done >= run.batches)
	{
		if (SPI_execute_with_args("UPDATE ato.incidents SET status = 'contained', marked_at = clock_timestamp()"
								  " WHERE id = $1", 1, (Oid[]) {UUIDOID},
								  (Datum[]) {UUIDPGetDatum(&incident)}, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "closing the incident failed");
		return true;
	}
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("marking batch %d of %d of incident %s", batches_done + 1, run.batches,
									DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&incident)))));
	incident_mark_batch(&run, batches_done, true);
	return true;
}

void
ato_incident_worker_main(Datum arg)
{
	IncidentWorkerArgs args;
	Oid			owner;
	ActingAs	acting;
	bool		more = true;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.database, InvalidOid, 0);
	ato_pin_session_search_path();

	if (TransactionIdIsValid(args.wait_for))
	{
		pgstat_report_activity(STATE_RUNNING, "waiting for the transaction that opened the incident");
		StartTransactionCommand();
		XactLockTableWait(args.wait_for, NULL, NULL, XLTW_None);
		CommitTransactionCommand();
	}

	while (more)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		/* the extension's owner, whom the worker acts as */
		owner = ato_relation_owner("incidents");
		if (!OidIsValid(owner))
			more = false;		/* the extension is not installed here */
		else
		{
			ato_act_as(owner, &acting);
			more = mark_next_batch();
			ato_act_as_end(&acting);
		}
		SPI_finish();
		PopActiveSnapshot();
		ato_commit_and_notify();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	proc_exit(0);
}

/* ---------------------------------------------------------------------
 * The launcher
 * ---------------------------------------------------------------------
 */

void
incident_launcher_register(void)
{
	BackgroundWorker worker;

	ato_worker_init(&worker, "ato_incident_launcher_main", "ato_response launcher", InvalidOid, 10);
	RegisterBackgroundWorker(&worker);
}

/*
 * The database's oid, or InvalidOid.  The launcher is connected to no
 * database, where only a heap scan of the shared catalog works.
 */
static Oid
database_oid(const char *name)
{
	Relation	rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
	HeapTuple	tuple;
	Oid			database = InvalidOid;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tuple);

		if (strcmp(NameStr(form->datname), name) == 0)
		{
			database = form->oid;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return database;
}

/* Databases given a detection worker since the last reload (launcher only). */
static List *launched_databases = NIL;

/*
 * Start the detection worker of each database of ato_response.databases
 * that has none from this launcher yet.  Problems are reported unless
 * quietly (the periodic retry for databases created since).
 */
static void
launch_for_configured_databases(bool quietly)
{
	char	   *names = pstrdup(ato_databases);
	List	   *list;
	ListCell   *cell;

	if (!SplitIdentifierString(names, ',', &list))
	{
		if (!quietly)
			ereport(WARNING,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ato_response.databases is not a list of database names: \"%s\"", ato_databases),
					 errhint("Separate the names with commas.")));
		return;
	}
	StartTransactionCommand();
	foreach(cell, list)
	{
		const char *name = (const char *) lfirst(cell);
		Oid			database = database_oid(name);

		if (!OidIsValid(database))
		{
			if (!quietly)
				ereport(WARNING,
						(errcode(ERRCODE_UNDEFINED_DATABASE),
						 errmsg("ato_response.databases names database \"%s\", which does not exist (yet)", name),
						 errhint("A detection worker starts within a minute of its creation.")));
		}
		else if (list_member_oid(launched_databases, database))
			continue;
		else if (detection_worker_launch(database))
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			launched_databases = lappend_oid(launched_databases, database);
			MemoryContextSwitchTo(old);
		}
		else if (!quietly)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("no background worker could be started for database \"%s\"", name),
					 errhint("Raise max_worker_processes.")));
	}
	CommitTransactionCommand();
}

void
ato_incident_launcher_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_activity(STATE_RUNNING, "starting detection workers");
	launch_for_configured_databases(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	for (;;)
	{
		/* once a minute, for databases created since */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 60000L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			list_free(launched_databases);
			launched_databases = NIL;
			launch_for_configured_databases(false);
		}
		else
			launch_for_configured_databases(true);
	}
}
