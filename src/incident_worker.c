/*
 * incident_worker.c
 *     The background worker that marks the rows of large incidents, one
 *     batch per transaction (registered and started by src/workers.c).
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
 * It acts as the extension's owner, restricted, with search_path pinned for
 * its whole session (src/owner.c).
 */
#include "postgres.h"

#include "access/xact.h"
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
#include "utils/wait_event.h"

#include "ato_response.h"
#include "compat.h"
#include "owner.h"
#include "response.h"
#include "workers.h"

PGDLLEXPORT void ato_incident_worker_main(Datum arg);

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
