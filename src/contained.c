/*
 * contained.c
 *     The one way the extension runs work whose failure must stay its own:
 *     in a subtransaction, the error copied out and the work rolled back,
 *     so that the caller records it and goes on.  An incident marks each
 *     registered table this way (a dropped or altered table fails alone),
 *     converts account ids that may not fit a column's type, and the
 *     detection worker runs each step and each rule this way (a failing or
 *     timed-out rule is recorded and the others run).
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "contained.h"

/*
 * Errors that must end the whole statement rather than a part of it: a
 * cancel or a shutdown (class 57), which the caller asked for.  Everything
 * else a part raises is its own: a table's trigger that raises a
 * serialization failure or an internal error, or a deadlock among its own
 * rows, fails that table alone, so that no table's code can roll back the
 * containment of an incident.  (A trigger that raises a class 57 code
 * itself still ends the statement: it cannot be told from a real cancel.)
 */
static bool
error_stops_everything(int sqlerrcode)
{
	return ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_TO_CATEGORY(ERRCODE_OPERATOR_INTERVENTION);
}

char *
ato_run_contained(void (*work) (void *), void *arg, ContainedErrors errors)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	char	   *volatile failure = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	PG_TRY();
	{
		work(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		if (errors == CONTAIN_AND_LOG_ALL_ERRORS)
			EmitErrorReport();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
		if (errors == CONTAIN_ORDINARY_ERRORS && error_stops_everything(edata->sqlerrcode))
			ReThrowError(edata);
		failure = edata->message;
	}
	PG_END_TRY();
	return failure;
}
