/*
 * contained.h
 *     Running work whose failure must stay its own: see src/contained.c.
 */
#ifndef ATO_CONTAINED_H
#define ATO_CONTAINED_H

/* How a contained failure is treated. */
typedef enum ContainedErrors
{
	/*
	 * A cancel or a shutdown ends the whole statement (raised again); every
	 * other error is contained.  For the parts of a caller's statement (one
	 * table of an incident).
	 */
	CONTAIN_ORDINARY_ERRORS,

	/*
	 * Every error is contained and written to the server log: for a
	 * background worker's unit of work, which its own timeout may cancel.
	 */
	CONTAIN_AND_LOG_ALL_ERRORS
} ContainedErrors;

/*
 * Run work(arg) in a subtransaction of the current transaction.  Returns
 * NULL, or the message (palloc'd in the caller's memory context) of the
 * error that rolled it back.  Comes back in the caller's memory context and
 * resource owner either way.
 */
extern char *ato_run_contained(void (*work) (void *), void *arg, ContainedErrors errors);

#endif							/* ATO_CONTAINED_H */
