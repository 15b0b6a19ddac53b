/*
 * detection_worker.c
 *     The always-on detection worker: one per database of
 *     ato_response.databases, started by the launcher (src/workers.c).
 *
 * Its states:
 *   1. starting: connects, and exits (status 0) if another detection worker
 *      already serves the database (a session advisory lock says so); starts
 *      an incident worker if an incident was left marking;
 *   2. waiting for the extension, if it is not installed yet: it looks again
 *      every interval;
 *   3. a cycle: ato.maintain_event_partitions(add_month => false), so
 *      that the rules' windows read only their own blocks and are planned
 *      for their size;
 *      ato.refresh_summaries() up to the last cycle's start less a minute
 *      (where the next windows of the rules begin; skipped when a long
 *      transaction storing events keeps it waiting), a month of history
 *      per transaction until it is there; then ato.add_event_partition()
 *      until it has nothing to add, one month per transaction (the months
 *      ahead, and those whose rows wait in a default partition); each
 *      enabled rule of
 *      ato.detection_rules in its own transaction (ato.run_detection(),
 *      under ato_response.rule_timeout), so that a slow or failing rule is
 *      cut off, recorded on its row and the others still run (every run
 *      counting as begun at the cycle's start); then ato.apply_retention(),
 *      and ato.write_owed_notices() (the users' notices of incidents
 *      contained after they were confirmed, or with accounts added).
 *      The steps besides the rules record how they went in
 *      ato.worker_steps: one that fails is recorded and skipped, and the
 *      cycle goes on;
 *   The worker runs at a lower CPU priority than the backends (nice
 *   DETECTION_WORKER_NICE, its process and its autogroup), and without
 *   parallel helpers (which would run at the backends' priority), so a
 *   refresh beside the application's logins takes the CPU they leave.
 *   4. sleeping until ato_response.detection_interval after the last cycle
 *      began, woken early by SIGHUP (new settings, a new interval counting
 *      from the last cycle; the GeoIP file is reopened by the next lookup
 *      when it changed) and SIGTERM (exits at once).
 * A run commits its alerts and the rule's bookkeeping together, and alerts
 * are unique per rule and finding: a worker killed in the middle (SIGKILL,
 * a crash of the server) loses the uncommitted run, which the next cycle
 * repeats, and never leaves an alert twice.  It is registered with a restart
 * time, so the postmaster starts it again.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/timeout.h"
#include "utils/wait_event.h"

#include "ato_response.h"
#include "compat.h"
#include "contained.h"
#include "locks.h"
#include "owner.h"
#include "workers.h"

PGDLLEXPORT void ato_detection_worker_main(Datum arg);


/* work_mem of the detection worker, at least (kB) */
/* The worker's nice value: a tenth of the CPU share of a backend, under contention. */
#define DETECTION_WORKER_NICE 10
/* tries at setting its autogroup's nice value, a tenth of a second apart */
#define AUTOGROUP_NICE_ATTEMPTS 50

/*
 * A history loaded at once (a first refresh, an import of months) is folded
 * into the summaries a month at a time, one transaction each, so that a
 * cancel or a restart loses at most a month's work and each step holds back
 * vacuum for one month's scan only; ato.summary_status shows how far it is.
 * A cycle takes at most three years of steps.
 */
#define SUMMARY_STEP_DAYS		"31"
#define SUMMARY_STEP_SPAN		SUMMARY_STEP_DAYS " days"
#define SUMMARY_STEPS_PER_CYCLE	36

#define DETECTION_WORK_MEM_KB 65536

/* Reads the rows of a statement, in the caller's memory context. */
typedef void (*ResultReader) (SPITupleTable *rows, uint64 count, void *arg);

/* One statement of the worker, as ato_run_contained() runs it. */
typedef struct WorkerStatement
{
	const char *sql;
	int			nargs;
	Oid		   *argtypes;
	Datum	   *values;
	bool		timed;
	ResultReader read;
	void	   *read_arg;
	MemoryContext reader_context;
} WorkerStatement;

/*
 * Lower this process's CPU priority to DETECTION_WORKER_NICE.  On Linux with
 * autogroup scheduling (kernel.sched_autogroup_enabled, the default of most
 * distributions) a nice value ranks a process only against the others of
 * its session, and every child of the postmaster begins a session of its
 * own: the worker's nice value alone would leave it an equal share against
 * each backend.  So the nice value of its session's group is lowered too
 * (the worker is the group's one process).  Failing either only costs the
 * application CPU, so it is logged, not fatal.
 */
static void
lower_cpu_priority(void)
{
	errno = 0;
	if (setpriority(PRIO_PROCESS, 0, DETECTION_WORKER_NICE) != 0)
		ereport(LOG,
				(errmsg("ato_response detection worker: could not lower its CPU priority: %m")));
#ifdef __linux__
	{
		const char *nice_value = CppAsString2(DETECTION_WORKER_NICE);
		ssize_t		length = strlen(nice_value);
		int			attempt;

		/*
		 * The kernel takes one change of an autogroup's nice value in a
		 * tenth of a second, machine-wide, and refuses others with EAGAIN:
		 * workers started together take turns.
		 */
		for (attempt = 1;; attempt++)
		{
			int			fd = open("/proc/self/autogroup", O_WRONLY);
			ssize_t		written;
			int			write_errno;

			/* absent: a kernel without autogroup, whose nice value is enough */
			if (fd < 0)
			{
				if (errno != ENOENT)
					ereport(LOG,
							(errmsg("ato_response detection worker: could not open /proc/self/autogroup: %m")));
				break;
			}
			written = write(fd, nice_value, length);
			/* (a short write sets no errno; the close must not clobber it) */
			write_errno = written >= 0 ? ENOSPC : errno;
			close(fd);
			if (written == length)
				break;
			errno = write_errno;
			if (errno != EAGAIN || attempt >= AUTOGROUP_NICE_ATTEMPTS)
			{
				ereport(LOG,
						(errmsg("ato_response detection worker: could not lower the CPU priority of its autogroup: %m")));
				break;
			}
			CHECK_FOR_INTERRUPTS();
			pg_usleep(100 * 1000L);
		}
	}
#endif
}

static void
run_statement(void *arg)
{
	WorkerStatement *statement = (WorkerStatement *) arg;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (statement->timed && ato_rule_timeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, ato_rule_timeout);
	ret = SPI_execute_with_args(statement->sql, statement->nargs, statement->argtypes,
								statement->values, NULL, false, 0);
	if (statement->timed)
		disable_timeout(STATEMENT_TIMEOUT, false);
	if (ret < 0)
		elog(ERROR, "\"%s\" failed: %s", statement->sql, SPI_result_code_string(ret));
	if (statement->read != NULL)
	{
		MemoryContext spi_context = MemoryContextSwitchTo(statement->reader_context);

		statement->read(SPI_tuptable, SPI_processed, statement->read_arg);
		MemoryContextSwitchTo(spi_context);
	}
	SPI_finish();
	PopActiveSnapshot();
}

/*
 * Run one statement in its own transaction, under ato_response.rule_timeout
 * when timed.  Returns NULL, or the message of the error that rolled it back
 * (which is also logged); read, when given, gets its rows before the
 * commit.  Comes back in the caller's memory context.
 */
static char *
run_transaction(const char *sql, int nargs, Oid *argtypes, Datum *values, bool timed,
				ResultReader read, void *read_arg)
{
	MemoryContext worker_context = CurrentMemoryContext;
	WorkerStatement statement = {sql, nargs, argtypes, values, timed, read, read_arg, worker_context};
	char	   *failure;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	MemoryContextSwitchTo(worker_context);
	failure = ato_run_contained(run_statement, &statement, CONTAIN_AND_LOG_ALL_ERRORS);
	/* a timeout that fired after the statement ended must not hit the commit */
	disable_timeout(STATEMENT_TIMEOUT, false);
	ato_commit_and_notify();
	MemoryContextSwitchTo(worker_context);
	return failure;
}

static void
read_first_bool(SPITupleTable *rows, uint64 count, void *arg)
{
	bool		isnull;

	if (count > 0)
		*(bool *) arg = DatumGetBool(SPI_getbinval(rows->vals[0], rows->tupdesc, 1, &isnull)) && !isnull;
}

/* The first column of the first row; false if there is none or the statement failed. */
static bool
query_bool(const char *sql)
{
	bool		result = false;

	if (run_transaction(sql, 0, NULL, NULL, false, read_first_bool, &result) != NULL)
		return false;
	return result;
}

/* Record on the rule's row why its run begun at started was cut off (a timeout, a cancel). */
static void
record_rule_failure(const char *rule, TimestampTz started, const char *message)
{
	Oid			argtypes[3] = {TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[3] = {CStringGetTextDatum(rule), TimestampTzGetDatum(started),
	CStringGetTextDatum(message)};

	(void) run_transaction("SELECT ato.record_rule_failure($1, $2, $3)", 3, argtypes, values, false,
						   NULL, NULL);
}

/*
 * Run one step of the cycle besides the rules (timed like a rule), and
 * record in ato.worker_steps how it went: a failing step is recorded and
 * skipped, and the cycle goes on.  Returns whether it succeeded.
 */
static bool
run_step(const char *step, const char *activity, const char *sql, int nargs, Oid *argtypes,
		 Datum *values)
{
	TimestampTz started = GetCurrentTimestamp();
	char	   *failure;
	Oid			record_types[3] = {TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum		record_values[3];

	pgstat_report_activity(STATE_RUNNING, activity);
	failure = run_transaction(sql, nargs, argtypes, values, true, NULL, NULL);
	record_values[0] = CStringGetTextDatum(step);
	record_values[1] = TimestampTzGetDatum(started);
	record_values[2] = failure != NULL ? CStringGetTextDatum(failure) : (Datum) 0;
	(void) run_transaction(failure != NULL ? "SELECT ato.record_worker_step($1, $2, $3)" :
						   "SELECT ato.record_worker_step($1, $2, NULL)",
						   failure != NULL ? 3 : 2, record_types, record_values, false, NULL, NULL);
	return failure == NULL;
}

static void
read_names(SPITupleTable *rows, uint64 count, void *arg)
{
	List	  **names = (List **) arg;

	for (uint64 i = 0; i < count; i++)
		*names = lappend(*names, SPI_getvalue(rows->vals[i], rows->tupdesc, 1));
}

/*
 * One cycle, begun at cycle_start; its allocations are in the caller's
 * (cycle) memory context.  previous_cycle is when the last one began, or 0.
 */
static void
run_cycle(TimestampTz previous_cycle, TimestampTz cycle_start)
{
	List	   *rules = NIL;
	ListCell   *cell;
	Oid			refresh_argtypes[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		refresh_values[2];

	/* the live partitions' new BRIN ranges and statistics, first: the refresh reads them */
	run_step("partitions", "maintaining the event partitions that take live events",
			 "SELECT ato.maintain_event_partitions(add_month => false)", 0, NULL, NULL);

	/*
	 * Then the summaries, up to where the last cycle began less a minute.
	 * Each rule's run counts as begun at the start of its cycle, and reads
	 * from there less its lookback, so a rule with a lookback of a minute
	 * (the built-in ones that read only what is new) starts exactly at the
	 * watermark, where impossible_travel takes each account's previous
	 * login from the summaries instead of reading a day back, and no
	 * unsummarised stretch lies between the two.  Rules with longer
	 * lookbacks read what is before the watermark from the summaries or the
	 * event store.
	 *
	 * The refresh waits for the transactions storing events that began
	 * before it (never the other way round): for a long import, at most a
	 * quarter of the interval and 15 s (lock_timeout, set first by the FROM
	 * item).
	 * Then it gives up, the error is logged, and the rules run all the same,
	 * reading what is not summarised from the event store.
	 */
	refresh_values[0] = TimestampTzGetDatum(previous_cycle != 0 ? previous_cycle : GetCurrentTimestamp());
	refresh_values[1] = Int32GetDatum(Max(Min(ato_detection_interval * 250, 15000), 100));
	for (int step = 0; step < SUMMARY_STEPS_PER_CYCLE; step++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!run_step("summaries", "refreshing the per-account summaries",
					  "SELECT ato.refresh_summaries($1 - interval '1 minute', interval '" SUMMARY_STEP_SPAN "')"
					  "  FROM pg_catalog.set_config('lock_timeout', $2::text, true)",
					  2, refresh_argtypes, refresh_values))
			break;
		/* stopped short: the stretch, or as many late days as a step takes */
		if (!query_bool("SELECT summarised_until < refreshing_to OR late_days >= " SUMMARY_STEP_DAYS
						"  FROM ato.summary_status"))
			break;
	}

	/*
	 * Then the months the event store still lacks (those ahead, those whose
	 * rows wait in a default partition), one per transaction: each holds the
	 * lock it takes on a default partition only from its attach to its
	 * commit.  It stops at the first that cannot be created without waiting
	 * (the next cycle tries again), and after two years of them.  After the
	 * summaries: a history loaded into a default partition is what answers
	 * need summarised first, and moving it (which fires no trigger, so
	 * notes no late day) takes as long again; where its rows lie does not
	 * change an answer.
	 */
	pgstat_report_activity(STATE_RUNNING, "creating the missing months of the event store");
	for (int month = 0; month < 24; month++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!query_bool("SELECT ato.add_event_partition() IS NOT NULL"))
			break;
	}

	if (run_transaction("SELECT name FROM ato.detection_rules WHERE enabled ORDER BY name", 0, NULL, NULL,
						false, read_names, &rules) != NULL)
		return;

	foreach(cell, rules)
	{
		const char *rule = (const char *) lfirst(cell);
		Oid			argtypes[2] = {TEXTOID, TIMESTAMPTZOID};
		Datum		values[2] = {CStringGetTextDatum(rule), TimestampTzGetDatum(cycle_start)};
		TimestampTz started = GetCurrentTimestamp();
		char	   *failure;

		CHECK_FOR_INTERRUPTS();
		pgstat_report_activity(STATE_RUNNING, psprintf("running detection rule %s", rule));
		failure = run_transaction("SELECT ato.run_detection($1, $2)", 2, argtypes, values, true, NULL, NULL);
		if (failure != NULL)
			record_rule_failure(rule, started, failure);
	}
	run_step("retention", "applying retention", "SELECT ato.apply_retention()", 0, NULL, NULL);
	/* after the revocations' fences: see ato.write_owed_notices() */
	run_step("notices", "writing the notices confirmed incidents owe", "SELECT ato.write_owed_notices()",
			 0, NULL, NULL);
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
ato_detection_worker_main(Datum arg)
{
	Oid			database = DatumGetObjectId(arg);
	MemoryContext cycle_context;
	bool		locked;
	LOCKTAG		tag;
	TimestampTz last_cycle = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/*
	 * Background work yields the CPU to the application: where logins and
	 * a refresh compete for the cores, the logins go first.  No backend
	 * ever waits for a lock this worker holds long (the refresh takes none
	 * that writers need, partition upkeep takes its strong locks NOWAIT),
	 * so running it slower cannot hold a login up.
	 */
	lower_cpu_priority();

	BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
	/* no SET clause protects a worker's own statements */
	ato_pin_session_search_path();

	/* the rules sort a window's logins per account: let them do it in memory */
	if (work_mem < DETECTION_WORK_MEM_KB)
		SetConfigOption("work_mem", CppAsString2(DETECTION_WORK_MEM_KB), PGC_USERSET, PGC_S_SESSION);

	/*
	 * No parallel helpers: the postmaster starts them at its own priority,
	 * not this worker's, so a refresh that fanned out would take the cores
	 * from the logins at full priority (bench/login_latency saw two helpers
	 * every cycle).  The same for the indexes a new month is given.
	 */
	SetConfigOption("max_parallel_workers_per_gather", "0", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("max_parallel_maintenance_workers", "0", PGC_USERSET, PGC_S_SESSION);

	cycle_context = AllocSetContextCreate(TopMemoryContext, "ato_response detection cycle",
										  ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cycle_context);

	/*
	 * The database's one detection worker holds its lock (include/locks.h)
	 * for the session; no role can take it from SQL to keep the worker out.
	 */
	ato_lock_tag(&tag, ATO_LOCK_DETECTION_WORKER);
	StartTransactionCommand();
	locked = LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
	CommitTransactionCommand();
	if (!locked)
		proc_exit(0);			/* another detection worker serves this database */

	if (query_bool("SELECT pg_catalog.to_regclass('ato.incidents') IS NOT NULL") &&
		query_bool("SELECT EXISTS (SELECT FROM ato.incidents WHERE status = 'marking')"))
		(void) incident_worker_launch(database, InvalidTransactionId);

	for (;;)
	{
		TimestampTz now;
		TimestampTz due;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		/* the latch is also set by unrelated signals: run only when due */
		now = GetCurrentTimestamp();
		if (last_cycle == 0 ||
			now >= TimestampTzPlusMilliseconds(last_cycle, (int64) ato_detection_interval * 1000))
		{
			TimestampTz previous_cycle = last_cycle;

			last_cycle = now;
			if (query_bool("SELECT pg_catalog.to_regclass('ato.detection_rules') IS NOT NULL"))
				run_cycle(previous_cycle, last_cycle);
			MemoryContextReset(cycle_context);
			now = GetCurrentTimestamp();
		}
		due = TimestampTzPlusMilliseconds(last_cycle, (int64) ato_detection_interval * 1000);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(1L, (long) ((due - now) / 1000)), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
