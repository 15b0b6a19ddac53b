/*
 * response.h
 *     The response side shared by its C files: the registered tables an
 *     incident marks (src/targets.c), one batch of an incident's marking
 *     (src/revoke.c) and the background worker that runs large incidents
 *     (src/incident_worker.c).
 */
#ifndef ATO_RESPONSE_RESPONSE_H
#define ATO_RESPONSE_RESPONSE_H

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "utils/uuid.h"

/* What an incident does to a registered table's rows of its accounts. */
typedef enum TargetAction
{
	TARGET_END,					/* set a NULL timestamp column (ended_at) */
	TARGET_REVOKE,				/* set a boolean column (revoked) to true */
	TARGET_DEACTIVATE,			/* set a boolean column (active) to false */
	TARGET_DELETE				/* delete the rows */
} TargetAction;

/* One registered table, as one incident's batch uses it. */
typedef struct RevocationTarget
{
	int32		id;
	char	   *name;			/* as registered, for messages */
	Oid			relid;			/* InvalidOid once unregistered */
	TargetAction action;
	char	   *user_column;
	char	   *state_column;
	char	   *time_column;
	char	   *reason_column;
	char	   *incident_column;
	char	   *created_column;
	/* filled by target_mark_batch() */
	int64		rows;			/* rows touched in this batch */
	int64		mismatched;		/* ids not of the user column's type: no row */
	char	   *error;			/* why this batch failed on it, or NULL */
} RevocationTarget;

/* What every batch of one incident needs. */
typedef struct IncidentRun
{
	pg_uuid_t	id;
	bool		given_id;		/* the caller gave id (ato.revoke_incident's incident_id) */
	bool		addition;		/* accounts added later (ato.add_incident_accounts) */
	TimestampTz revoked_at;
	text	   *reason;
	bool		has_created_after;
	TimestampTz delete_created_after;
	char	   *channel;
	Datum	   *user_ids;		/* text, sorted, without duplicates */
	int			accounts;
	int			batch_size;
	int			batches;
} IncidentRun;

/* src/targets.c */
extern RevocationTarget *targets_of_incident(const pg_uuid_t *incident, int *ntargets);
extern void target_mark_batch(RevocationTarget *target, const IncidentRun *run,
							  Datum *user_ids, int nids);

/* src/revoke.c */
extern void incident_mark_batch(const IncidentRun *run, int batch, bool lock_accounts);
extern bool incident_load(const pg_uuid_t *incident, IncidentRun *run, int *batches_done);

#endif							/* ATO_RESPONSE_RESPONSE_H */
