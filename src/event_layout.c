/*
 * event_layout.c
 *     The event layout lock: what keeps a reader of the event store from
 *     missing the rows of a month while ato.attach_event_month() moves them
 *     from a default partition into their new partition.
 *
 * PostgreSQL 15 builds a query's list of partitions when it plans it, and
 * takes the snapshot it reads with when it starts to run.  ATTACH PARTITION
 * locks the parent only in SHARE UPDATE EXCLUSIVE mode, so a query that
 * begins to plan while a month is being attached lists the partitions
 * without the new one, then waits for the default partition (which the
 * attach holds in ACCESS EXCLUSIVE mode), and runs, once the attach has
 * committed, with a snapshot in which the month's rows are gone from the
 * default partition: it misses them all.  Blocking such readers at the
 * parent would take ACCESS EXCLUSIVE, which writers would wait behind.
 *
 * So the extension's own readers (the detection functions, the refresh of
 * the summaries, the rules, evidence) take this lock in share mode before
 * they plan, for the rest of their transaction, and the attach of a month
 * that moves rows takes it in exclusive mode without waiting: it is refused
 * while any of them runs (the month is left for the next cycle), and a
 * reader that comes during the attach waits for its commit and then plans
 * with the new partition.  Writers never take it.  Queries of one's own on
 * the event tables are not covered: the README says so.
 */
#include "postgres.h"

#include "fmgr.h"
#include "storage/lock.h"

#include "event_layout.h"
#include "locks.h"

void
ato_hold_event_layout(void)
{
	LOCKTAG		tag;

	ato_lock_tag(&tag, ATO_LOCK_EVENT_LAYOUT);
	(void) LockAcquire(&tag, ShareLock, false, false);
}

PG_FUNCTION_INFO_V1(ato_hold_event_layout_sql);

Datum
ato_hold_event_layout_sql(PG_FUNCTION_ARGS)
{
	ato_hold_event_layout();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(ato_try_change_event_layout);

Datum
ato_try_change_event_layout(PG_FUNCTION_ARGS)
{
	LOCKTAG		tag;

	ato_lock_tag(&tag, ATO_LOCK_EVENT_LAYOUT);
	PG_RETURN_BOOL(LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL);
}
