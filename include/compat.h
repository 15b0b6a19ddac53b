/*
 * compat.h
 *     The few server APIs that differ across PostgreSQL 13 to 17, behind one
 *     name each: the one place version differences live.  Only PostgreSQL 15
 *     is built and tested (see README.md); the other branches are untested.
 */
#ifndef ATO_COMPAT_H
#define ATO_COMPAT_H

#include "access/xact.h"
#include "commands/async.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/tuplestore.h"

/*
 * Commit a background worker's transaction and send the notifications it
 * queued: before 15 a process outside the client protocol had to deliver
 * them itself.
 */
static inline void
ato_commit_and_notify(void)
{
	CommitTransactionCommand();
#if PG_VERSION_NUM < 150000
	ProcessCompletedNotifies();
#endif
}

/*
 * Set up a set-returning function in materialize mode: rsinfo->setResult
 * and rsinfo->setDesc are ready for tuplestore_putvalues() afterwards.
 */
#if PG_VERSION_NUM >= 160000
#define ato_init_materialized_srf(fcinfo) InitMaterializedSRF((fcinfo), 0)
#elif PG_VERSION_NUM >= 150000
#define ato_init_materialized_srf(fcinfo) SetSingleFuncCall((fcinfo), 0)
#else
static inline void
ato_init_materialized_srf(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	tupdesc;
	MemoryContext oldcontext;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));

	oldcontext = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(oldcontext);
}
#endif

/*
 * The datconnlimit of a database a DROP DATABASE left half-dropped, which
 * no one can connect to (marked so from 15.4, 14.9, 13.12 on; before, never).
 */
#ifndef DATCONNLIMIT_INVALID_DB
#define DATCONNLIMIT_INVALID_DB -2
#endif

#endif							/* ATO_COMPAT_H */
