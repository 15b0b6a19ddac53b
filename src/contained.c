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
 * Errors that must end the whole statement (cancel, shutdown, lack of
 * resources, deadlock or serialization failure) rather than a part of it.
 */
static bool
error_stops_everything(int sqlerrcode)
{
	int			class = ERRCODE_TO_CATEGORY(sqlerrcode);

	return class == ERRCODE_TO_CATEGORY(ERRCODE_TRANSACTION_ROLLBACK) ||
		class == ERRCODE_TO_CATEGORY(ERRCODE_OPERATOR_INTERVENTION) ||
		class == ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES) ||
		class == ERRCODE_TO_CATEGORY(ERRCODE_PROGRAM_LIMIT_EXCEEDED) ||
		class == ERRCODE_TO_CATEGORY(ERRCODE_INTERNAL_ERROR);
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
