/*
 * workers.c
 *     The one home of the library's background workers' registration: how
 *     each is described to the postmaster, starting a detection or an
 *     incident worker for a database, and the launcher, which starts the
 *     detection workers (as autoprewarm.c holds its leader and the
 *     registration of its per-database workers).  The workers' own loops are
 *     in src/detection_worker.c and src/incident_worker.c; this file calls
 *     neither, it names their entry points to the postmaster.
 *
 * The launcher exists only when the library is in shared_preload_libraries.
 * At server start, at every reload, and every minute for databases created
 * since, it starts the detection worker of each database in
 * ato_response.databases (each starts an incident worker when a shutdown
 * left an incident marking; without the launcher, ato.resume_incidents()
 * does that by hand), and stops the one of a database dropped since.  Each
 * round of the launcher allocates in a memory context of its own, reset
 * after the round.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "ato_response.h"
#include "compat.h"
#include "workers.h"

PGDLLEXPORT void ato_launcher_main(Datum arg);

StaticAssertDecl(sizeof(IncidentWorkerArgs) <= BGW_EXTRALEN, "bgw_extra is too small");

/*
 * A worker of this library that connects to a database once recovery is
 * over: its entry function, its type (pg_stat_activity.backend_type, and its
 * name with the database) and how many seconds after a crash it restarts.
 */
static void
worker_describe(BackgroundWorker *worker, const char *function, const char *type,
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

void
launcher_register(void)
{
	BackgroundWorker worker;

	worker_describe(&worker, "ato_launcher_main", "ato_response launcher", InvalidOid, 10);
	RegisterBackgroundWorker(&worker);
}

/*
 * Only the launcher starts detection workers; it keeps each one's handle (in
 * the caller's memory context) to stop it once its database is dropped.
 */
static BackgroundWorkerHandle *
detection_worker_launch(Oid database)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	worker_describe(&worker, "ato_detection_worker_main", "ato_response detection worker", database, 10);
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return NULL;
	return handle;
}

bool
incident_worker_launch(Oid database, TransactionId wait_for)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	IncidentWorkerArgs args = {database, wait_for};

	worker_describe(&worker, "ato_incident_worker_main", "ato_response incident worker", database, 5);
	memcpy(worker.bgw_extra, &args, sizeof(args));
	return RegisterDynamicBackgroundWorker(&worker, &handle);
}

/* ---------------------------------------------------------------------
 * The launcher
 * ---------------------------------------------------------------------
 */

/*
 * The databases a worker can connect to (not datallowconn = false, not left
 * half-dropped), as a list of (oid, name) pairs in the current memory
 * context.  The launcher is connected to no database, where only a heap scan
 * of the shared catalog works; it scans it once a round.
 */
typedef struct ConnectableDatabase
{
	Oid			oid;
	char		name[NAMEDATALEN];
} ConnectableDatabase;

static List *
connectable_databases(void)
{
	Relation	rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
	HeapTuple	tuple;
	List	   *databases = NIL;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tuple);
		ConnectableDatabase *database;

		if (!form->datallowconn || form->datconnlimit == DATCONNLIMIT_INVALID_DB)
			continue;
		database = palloc(sizeof(ConnectableDatabase));
		database->oid = form->oid;
		strlcpy(database->name, NameStr(form->datname), NAMEDATALEN);
		databases = lappend(databases, database);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return databases;
}

/* The oid of the connectable database of that name in the list, or InvalidOid. */
static Oid
database_named(List *databases, const char *name)
{
	ListCell   *cell;

	foreach(cell, databases)
	{
		ConnectableDatabase *database = (ConnectableDatabase *) lfirst(cell);

		if (strcmp(database->name, name) == 0)
			return database->oid;
	}
	return InvalidOid;
}

static bool
database_listed(List *databases, Oid oid)
{
	ListCell   *cell;

	foreach(cell, databases)
		if (((ConnectableDatabase *) lfirst(cell))->oid == oid)
			return true;
	return false;
}

/*
 * The detection workers this launcher started, one per database, with the
 * handles that stop them, in launched_context.
 */
typedef struct LaunchedWorker
{
	Oid			database;
	BackgroundWorkerHandle *handle;
} LaunchedWorker;

static List *launched_workers = NIL;
static MemoryContext launched_context = NULL;

static bool
launched_for(Oid database)
{
	ListCell   *cell;

	foreach(cell, launched_workers)
		if (((LaunchedWorker *) lfirst(cell))->database == database)
			return true;
	return false;
}

/*
 * Stop the workers of databases dropped since they were started (or made
 * unconnectable).  A worker's database is gone for good (a database created
 * again under the same name has another oid): left alone, the postmaster
 * would start it again every ten seconds, to fail at connecting, for as long
 * as the server runs, and keep a background worker slot; stopped here, it
 * fails for at most a round.  Only the workers this launcher started have a
 * handle here: after the launcher itself was started again (a crash of the
 * server, a SIGTERM), those of the launcher before are not stopped.
 */
static void
stop_workers_of_dropped_databases(List *databases)
{
	ListCell   *cell;

	foreach(cell, launched_workers)
	{
		LaunchedWorker *launched = (LaunchedWorker *) lfirst(cell);

		if (database_listed(databases, launched->database))
			continue;
		TerminateBackgroundWorker(launched->handle);
		ereport(LOG,
				(errmsg("ato_response: database %u was dropped or no longer accepts connections; its detection worker is stopped",
						launched->database)));
		launched_workers = foreach_delete_current(launched_workers, cell);
		pfree(launched->handle);
		pfree(launched);
	}
}

/*
 * One round: stop the workers of databases dropped since, then start the
 * detection worker of each database of ato_response.databases that has none
 * from this launcher yet.  Problems are reported unless quietly (the
 * periodic retry for databases created since).  Allocates in the round's
 * context and the transaction's, but for the list of launched workers.
 */
static void
launcher_round(bool quietly)
{
	char	   *names = pstrdup(ato_databases);
	List	   *list;
	List	   *databases;
	ListCell   *cell;
	bool		parsed = SplitIdentifierString(names, ',', &list);

	if (!parsed && !quietly)
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ato_response.databases is not a list of database names: \"%s\"", ato_databases),
				 errhint("Separate the names with commas.")));
	StartTransactionCommand();
	databases = connectable_databases();
	stop_workers_of_dropped_databases(databases);
	foreach(cell, parsed ? list : NIL)
	{
		const char *name = (const char *) lfirst(cell);
		Oid			database = database_named(databases, name);

		if (!OidIsValid(database))
		{
			if (!quietly)
				ereport(WARNING,
						(errcode(ERRCODE_UNDEFINED_DATABASE),
						 errmsg("ato_response.databases names database \"%s\", which does not exist (yet) or does not accept connections", name),
						 errhint("A detection worker starts within a minute of its creation.")));
		}
		else if (!launched_for(database))
		{
			MemoryContext old = MemoryContextSwitchTo(launched_context);
			BackgroundWorkerHandle *handle = detection_worker_launch(database);

			if (handle != NULL)
			{
				LaunchedWorker *launched = palloc(sizeof(LaunchedWorker));

				launched->database = database;
				launched->handle = handle;
				launched_workers = lappend(launched_workers, launched);
			}
			MemoryContextSwitchTo(old);
			if (handle == NULL && !quietly)
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("no background worker could be started for database \"%s\"", name),
						 errhint("Raise max_worker_processes.")));
		}
	}
	CommitTransactionCommand();
}

void
ato_launcher_main(Datum arg)
{
	MemoryContext round_context;
	bool		quietly = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	launched_context = AllocSetContextCreate(TopMemoryContext, "ato_response launched databases",
											 ALLOCSET_SMALL_SIZES);
	round_context = AllocSetContextCreate(TopMemoryContext, "ato_response launcher round",
										  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		MemoryContext old = MemoryContextSwitchTo(round_context);

		pgstat_report_activity(STATE_RUNNING, "starting detection workers");
		launcher_round(quietly);
		pgstat_report_activity(STATE_IDLE, NULL);
		MemoryContextSwitchTo(old);
		MemoryContextReset(round_context);

		/* once a minute, for databases created since */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 60000L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		quietly = true;
		if (ConfigReloadPending)
		{
			/*
			 * New settings: every configured database is looked at again,
			 * loudly.  The workers started keep running (a database taken
			 * out of the list keeps its worker until the next restart).
			 */
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			quietly = false;
		}
	}
}
