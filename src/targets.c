/*
 * targets.c
 *     The application's tables an incident marks ("revocation targets"):
 *     registering one (ato.register_revocation_target) with its columns and
 *     the caller's privileges checked, listing an incident's targets,
 *     marking one target's rows for one batch of accounts, and counting the
 *     rows a marking would touch (ato.preview_revocation_targets(), with the
 *     marking's own condition, as the marking runs).
 *
 * A target's statement is built from the catalog at each batch, names quoted
 * with quote_identifier(), and every caller value reaches it as a parameter:
 *   $1 the batch's account ids (as the type of the user-id column),
 *   $2 the revocation time, $3 the reason, $4 the incident id,
 *   $5 delete_created_after (delete targets with a created column).
 * Each target runs in its own subtransaction, so a table that was dropped or
 * altered fails alone (its error is recorded) and the others still complete,
 * and as the table's owner in a security-restricted operation with a pinned
 * search_path (src/owner.c), so that the table's own code (triggers,
 * defaults, rules, policies, index expressions) never runs with the
 * extension's rights; operators are schema-qualified.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "ato_response.h"
#include "compat.h"
#include "contained.h"
#include "owner.h"
#include "response.h"

#define TARGET_NPARAMS 5

static const char *const target_action_names[] = {"end", "revoke", "deactivate", "delete"};

static TargetAction
target_action_from_name(const char *name)
{
	for (int i = 0; i < (int) lengthof(target_action_names); i++)
		if (strcmp(name, target_action_names[i]) == 0)
			return (TargetAction) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("register_revocation_target: unknown action \"%s\"", name),
			 errhint("Use end (a NULL ended_at column gets the revocation time), revoke (a boolean revoked column becomes true), "
					 "deactivate (a boolean active column becomes false) or delete.")));
	pg_unreachable();
}

#define ID_TYPES_HINT "User ids are matched as text, varchar, uuid, bigint or integer."

/*
 * The element type account ids are converted to for a user-id column of the
 * given (base) type, or InvalidOid if ids cannot be matched against it.
 */
static Oid
id_type_for_column(Oid column_type)
{
	switch (column_type)
	{
		case TEXTOID:
		case VARCHAROID:
			return TEXTOID;
		case UUIDOID:
		case INT8OID:
		case INT4OID:
			return column_type;
		default:
			return InvalidOid;
	}
}

/* ---------------------------------------------------------------------
 * Account ids as the user-id column's type
 * ---------------------------------------------------------------------
 */

typedef struct IdConversion
{
	FmgrInfo	input;
	Oid			ioparam;
	Datum	   *ids;			/* text */
	int			first;
	int			count;
	Datum	   *out;
} IdConversion;

static void
convert_ids(void *arg)
{
	IdConversion *conv = (IdConversion *) arg;

	for (int i = conv->first; i < conv->first + conv->count; i++)
		conv->out[i] = InputFunctionCall(&conv->input, TextDatumGetCString(conv->ids[i]),
										 conv->ioparam, -1);
}

/*
 * The ids that are valid input for the type, converted; an id that is not
 * (a name where the column holds uuids) cannot match a row and is left out.
 */
static ArrayType *
ids_as_array(Datum *ids, int nids, Oid type, int64 *left_out)
{
	IdConversion conv;
	bool	   *valid = palloc(nids * sizeof(bool));
	Datum	   *kept = palloc(nids * sizeof(Datum));
	int			nkept = 0;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Oid			input_function;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	*left_out = 0;
	if (type == TEXTOID)
		return construct_array(ids, nids, TEXTOID, typlen, typbyval, typalign);

	getTypeInputInfo(type, &input_function, &conv.ioparam);
	fmgr_info(input_function, &conv.input);
	conv.ids = ids;
	conv.out = palloc(nids * sizeof(Datum));

#if PG_VERSION_NUM >= 160000
	for (int i = 0; i < nids; i++)
	{
		ErrorSaveContext escontext = {T_ErrorSaveContext};

		valid[i] = InputFunctionCallSafe(&conv.input, TextDatumGetCString(ids[i]), conv.ioparam,
										 -1, (Node *) &escontext, &conv.out[i]);
	}
#else
	/* All at once in one subtransaction; one by one only if some id is bad. */
	conv.first = 0;
	conv.count = nids;
	if (ato_run_contained(convert_ids, &conv, CONTAIN_ORDINARY_ERRORS) == NULL)
		memset(valid, true, nids * sizeof(bool));
	else
	{
		conv.count = 1;
		for (int i = 0; i < nids; i++)
		{
			conv.first = i;
			valid[i] = ato_run_contained(convert_ids, &conv, CONTAIN_ORDINARY_ERRORS) == NULL;
		}
	}
#endif

	for (int i = 0; i < nids; i++)
		if (valid[i])
			kept[nkept++] = conv.out[i];
	*left_out = nids - nkept;
	return construct_array(kept, nkept, type, typlen, typbyval, typalign);
}

/* ---------------------------------------------------------------------
 * Statements
 * ---------------------------------------------------------------------
 */

static char *
qualified_relation_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * The statement that marks (or deletes) the target's rows of $1's accounts;
 * count_only: the statement that counts the rows it would touch, under the
 * same condition (ato.preview_revocation()).
 */
static char *
target_statement(const RevocationTarget *target, bool count_only)
{
	StringInfoData sql;
	const char *relation = qualified_relation_name(target->relid);

	initStringInfo(&sql);
	if (count_only)
		appendStringInfo(&sql, "SELECT pg_catalog.count(*) FROM %s", relation);
	else if (target->action == TARGET_DELETE)
		appendStringInfo(&sql, "DELETE FROM %s", relation);
	else
	{
		appendStringInfo(&sql, "UPDATE %s SET %s = %s", relation,
						 quote_identifier(target->state_column),
						 target->action == TARGET_END ? "$2" :
						 target->action == TARGET_REVOKE ? "true" : "false");
		if (target->time_column != NULL)
			appendStringInfo(&sql, ", %s = $2", quote_identifier(target->time_column));
		if (target->reason_column != NULL)
			appendStringInfo(&sql, ", %s = $3", quote_identifier(target->reason_column));
		if (target->incident_column != NULL)
			appendStringInfo(&sql, ", %s = $4", quote_identifier(target->incident_column));
	}

	appendStringInfo(&sql, " WHERE %s OPERATOR(pg_catalog.=) ANY ($1)",
					 quote_identifier(target->user_column));
	if (target->action == TARGET_DELETE)
	{
		if (target->created_column != NULL)
			appendStringInfo(&sql, " AND ($5 IS NULL OR %s OPERATOR(pg_catalog.>=) $5)",
							 quote_identifier(target->created_column));
	}
	else
		appendStringInfo(&sql, " AND %s %s",
						 quote_identifier(target->state_column),
						 target->action == TARGET_END ? "IS NULL" :
						 target->action == TARGET_REVOKE ? "IS NOT TRUE" : "IS NOT FALSE");
	return sql.data;
}

/* The type the target's user-id column has now (it may have been altered). */
static Oid
target_id_type(const RevocationTarget *target)
{
	AttrNumber	attnum = get_attnum(target->relid, target->user_column);
	Oid			id_type;

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("revocation target %s has no column \"%s\"", target->name, target->user_column),
				 errhint("Register the table again with ato.register_revocation_target().")));
	id_type = id_type_for_column(getBaseType(get_atttype(target->relid, attnum)));
	if (!OidIsValid(id_type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("revocation target %s: column \"%s\" is of type %s", target->name,
						target->user_column, format_type_be(get_atttype(target->relid, attnum))),
				 errhint(ID_TYPES_HINT)));
	return id_type;
}

typedef struct TargetBatch
{
	RevocationTarget *target;
	const IncidentRun *run;
	Datum	   *user_ids;
	int			nids;
	bool		dry_run;		/* only prepare the statement */
	bool		count_only;		/* count the rows it would touch, change none */
} TargetBatch;

static void
mark_target(void *arg)
{
	TargetBatch *batch = (TargetBatch *) arg;
	RevocationTarget *target = batch->target;
	const IncidentRun *run = batch->run;
	Oid			id_type = target_id_type(target);
	Oid			argtypes[TARGET_NPARAMS] = {get_array_type(id_type), TIMESTAMPTZOID, TEXTOID,
	UUIDOID, TIMESTAMPTZOID};
	Datum		values[TARGET_NPARAMS];
	char		nulls[TARGET_NPARAMS] = {' ', ' ', ' ', ' ', ' '};
	SPIPlanPtr	plan;
	ActingAs	acting;
	int			ret;

	/*
	 * The table's triggers, defaults, rules, policies and index expressions
	 * are its owner's code: the statement runs as the owner, restricted.
	 * The caller's own right to change the table was checked when it was
	 * registered, and to call ato.revoke_incident() by its grants.
	 */
	/* locked first, so that its owner cannot change under the statement */
	LockRelationOid(target->relid, batch->count_only ? AccessShareLock : RowExclusiveLock);
	ato_act_as(ato_table_owner(target->relid), &acting);
	plan = SPI_prepare(target_statement(target, batch->count_only), TARGET_NPARAMS, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for revocation target %s: %s", target->name,
			 SPI_result_code_string(SPI_result));
	if (batch->dry_run)
	{
		SPI_freeplan(plan);
		ato_act_as_end(&acting);
		return;
	}

	values[0] = PointerGetDatum(ids_as_array(batch->user_ids, batch->nids, id_type, &target->mismatched));
	values[1] = TimestampTzGetDatum(run->revoked_at);
	values[2] = PointerGetDatum(run->reason);
	values[3] = UUIDPGetDatum(&run->id);
	values[4] = TimestampTzGetDatum(run->delete_created_after);
	if (!run->has_created_after)
		nulls[4] = 'n';

	ret = SPI_execute_plan(plan, values, nulls, batch->count_only, 0);
	if (batch->count_only)
	{
		bool		isnull;

		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "counting the rows of revocation target %s failed: %s", target->name,
				 SPI_result_code_string(ret));
		target->rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	else if (ret != SPI_OK_UPDATE && ret != SPI_OK_DELETE)
		elog(ERROR, "marking revocation target %s failed: %s", target->name,
			 SPI_result_code_string(ret));
	else
		target->rows = (int64) SPI_processed;
	SPI_freeplan(plan);
	ato_act_as_end(&acting);
}

static void
target_run_batch(RevocationTarget *target, const IncidentRun *run, Datum *user_ids, int nids,
				 bool count_only)
{
	TargetBatch batch = {target, run, user_ids, nids, false, count_only};

	target->rows = 0;
	target->mismatched = 0;
	target->error = NULL;
	if (!OidIsValid(target->relid))
		target->error = psprintf("revocation target %s was unregistered", target->name);
	else if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(target->relid)))
		target->error = psprintf("revocation target %s no longer exists", target->name);
	else
		target->error = ato_run_contained(mark_target, &batch, CONTAIN_ORDINARY_ERRORS);
}

void
target_mark_batch(RevocationTarget *target, const IncidentRun *run, Datum *user_ids, int nids)
{
	target_run_batch(target, run, user_ids, nids, false);
}

/* ---------------------------------------------------------------------
 * An incident's targets
 * ---------------------------------------------------------------------
 */

/*
 * The targets the incident marks: those registered when it was opened (a
 * target unregistered since comes back with relid InvalidOid); for a NULL
 * incident, those a new incident would mark (every registered one).  Needs
 * SPI.
 */
RevocationTarget *
targets_of_incident(const pg_uuid_t *incident, int *ntargets)
{
	static const char registered_sql[] =
		"SELECT t.id, t.target_name, t.target::oid, t.action, t.user_column,"
		"       t.state_column, t.time_column, t.reason_column, t.incident_column, t.created_column"
		"  FROM ato.revocation_targets t"
		" ORDER BY t.id";
	static const char sql[] =
		"SELECT it.target_id, it.target_name, t.target::oid, t.action, t.user_column,"
		"       t.state_column, t.time_column, t.reason_column, t.incident_column, t.created_column"
		"  FROM ato.incident_targets it"
		"  LEFT JOIN ato.revocation_targets t ON t.id = it.target_id"
		" WHERE it.incident_id = $1"
		" ORDER BY it.target_id";
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];
	RevocationTarget *targets;
	int			ret;

	if (incident == NULL)
		ret = SPI_execute(registered_sql, true, 0);
	else
	{
		values[0] = UUIDPGetDatum(incident);
		ret = SPI_execute_with_args(sql, 1, argtypes, values, NULL, false, 0);
	}
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading the incident's revocation targets failed: %s",
			 SPI_result_code_string(ret));
	*ntargets = (int) SPI_processed;
	targets = palloc0(sizeof(RevocationTarget) * Max(*ntargets, 1));
	for (int i = 0; i < *ntargets; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RevocationTarget *target = &targets[i];
		bool		isnull;
		Datum		relid;

		target->id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
		target->name = SPI_getvalue(tuple, desc, 2);
		relid = SPI_getbinval(tuple, desc, 3, &isnull);
		target->relid = isnull ? InvalidOid : DatumGetObjectId(relid);
		if (isnull)
			continue;
		target->action = target_action_from_name(SPI_getvalue(tuple, desc, 4));
		target->user_column = SPI_getvalue(tuple, desc, 5);
		target->state_column = SPI_getvalue(tuple, desc, 6);
		target->time_column = SPI_getvalue(tuple, desc, 7);
		target->reason_column = SPI_getvalue(tuple, desc, 8);
		target->incident_column = SPI_getvalue(tuple, desc, 9);
		target->created_column = SPI_getvalue(tuple, desc, 10);
	}
	SPI_freetuptable(SPI_tuptable);
	return targets;
}

/* ---------------------------------------------------------------------
 * ato.preview_revocation_targets
 * ---------------------------------------------------------------------
 */

/*
 * ato.preview_revocation_targets(user_ids text[], delete_created_after
 * timestamptz) RETURNS TABLE (target_id, target, action, rows,
 * mismatched_ids, error): for ato.preview_revocation(), per registered
 * table, the rows an incident over these accounts would touch now, counted
 * by the marking's own condition, as the table's owner (as the marking
 * runs), in a subtransaction per table; nothing is changed.  NULL elements
 * are left out (the SQL caller rejects them first).
 */
PG_FUNCTION_INFO_V1(ato_preview_revocation_targets);
Datum
ato_preview_revocation_targets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	IncidentRun run;
	RevocationTarget *targets;
	int			ntargets;
	Datum	   *ids;
	bool	   *nulls;
	int			n;
	int			kept = 0;

	ato_init_materialized_srf(fcinfo);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("preview_revocation: user_ids must not be NULL"),
				 errhint("Pass the accounts ato.revoke_incident() would be given.")));
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), TEXTOID, -1, false, TYPALIGN_INT, &ids, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			ids[kept++] = ids[i];

	memset(&run, 0, sizeof(run));
	run.reason = cstring_to_text("preview");
	run.revoked_at = GetCurrentTimestamp();
	run.has_created_after = !PG_ARGISNULL(1);
	run.delete_created_after = run.has_created_after ? PG_GETARG_TIMESTAMPTZ(1) : 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	targets = targets_of_incident(NULL, &ntargets);
	for (int i = 0; i < ntargets; i++)
	{
		Datum		values[6];
		bool		isnull[6] = {false, false, false, false, false, false};

		target_run_batch(&targets[i], &run, ids, kept, true);
		values[0] = Int32GetDatum(targets[i].id);
		values[1] = CStringGetTextDatum(targets[i].name);
		values[2] = CStringGetTextDatum(target_action_names[targets[i].action]);
		values[3] = Int64GetDatum(targets[i].rows);
		values[4] = Int64GetDatum(targets[i].mismatched);
		isnull[5] = targets[i].error == NULL;
		values[5] = isnull[5] ? (Datum) 0 : CStringGetTextDatum(targets[i].error);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
	}
	SPI_finish();
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * ato.register_revocation_target
 * ---------------------------------------------------------------------
 */

static char *
name_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : pstrdup(NameStr(*PG_GETARG_NAME(argno)));
}

/* The column's base type; an error naming the table if it has no such column. */
static Oid
registered_column_type(Oid relid, const char *table, const char *column, const char *holds)
{
	AttrNumber	attnum = get_attnum(relid, column);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("register_revocation_target: table %s has no column \"%s\"", table, column),
				 errhint("Name the column that holds %s.", holds)));
	return getBaseType(get_atttype(relid, attnum));
}

static void
require_column_type(Oid relid, const char *table, const char *column, const char *holds,
					bool ok_types(Oid), const char *expected)
{
	Oid			type;

	if (column == NULL)
		return;
	type = registered_column_type(relid, table, column, holds);
	if (!ok_types(type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("register_revocation_target: column \"%s\" of %s is of type %s, not %s",
						column, table, format_type_be(type), expected),
				 errhint("Name the column that holds %s.", holds)));
}

static bool
is_time_type(Oid type)
{
	return type == TIMESTAMPTZOID || type == TIMESTAMPOID;
}

static bool
is_boolean_type(Oid type)
{
	return type == BOOLOID;
}

static bool
is_text_type(Oid type)
{
	return type == TEXTOID || type == VARCHAROID;
}

static bool
is_incident_id_type(Oid type)
{
	return type == UUIDOID || is_text_type(type);
}

static void
forbid_column(const char *column, const char *argument, TargetAction action)
{
	if (column != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("register_revocation_target: %s does not apply to action %s",
						argument, target_action_names[action]),
				 errhint("Leave it NULL.")));
}

static void
require_privilege(Oid relid, const char *table, AclMode mode, const char *privilege)
{
	Oid			caller = GetOuterUserId();

	if (pg_class_aclcheck(relid, caller, mode) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("register_revocation_target: role \"%s\" may not %s table %s",
						GetUserNameFromId(caller, false), privilege, table),
				 errhint("Incidents act on a table as the extension's owner; only a role that may %s it itself can register it.",
						 privilege)));
}

/*
 * An incident runs the table's triggers with search_path pinned to
 * pg_catalog, pg_temp: say which of them do not set a search_path of their
 * own, since an unqualified name in them will not be found then.  Needs SPI.
 */
static void
notice_triggers_without_search_path(const RevocationTarget *target)
{
	static const char sql[] =
		"SELECT string_agg(quote_ident(t.tgname) OPERATOR(pg_catalog.||) ' ('"
		"                  OPERATOR(pg_catalog.||) p.oid::pg_catalog.regprocedure::pg_catalog.text"
		"                  OPERATOR(pg_catalog.||) ')', ', ' ORDER BY t.tgname)"
		"  FROM pg_catalog.pg_trigger t"
		"  JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) t.tgfoid"
		"  JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang"
		" WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 AND NOT t.tgisinternal"
		"   AND l.lanname OPERATOR(pg_catalog.<>) ALL ('{c,internal}'::pg_catalog.name[])"
		"   AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c"
		"                    WHERE c OPERATOR(pg_catalog.~~) 'search\\_path=%')";
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(target->relid)};
	char	   *triggers;

	if (SPI_execute_with_args(sql, 1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "listing the triggers of %s failed", target->name);
	triggers = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (triggers != NULL)
		ereport(NOTICE,
				(errmsg("register_revocation_target: incidents run the triggers of %s with search_path pg_catalog, pg_temp; these set no search_path of their own: %s",
						target->name, triggers),
				 errhint("Qualify the names their functions use, or give each function its own SET search_path clause.")));
}

PG_FUNCTION_INFO_V1(ato_register_revocation_target);
Datum
ato_register_revocation_target(PG_FUNCTION_ARGS)
{
	static const char upsert_sql[] =
		"INSERT INTO ato.revocation_targets AS t (target, target_name, user_column, action,"
		"       state_column, time_column, reason_column, incident_column, created_column, registered_by)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
		" ON CONFLICT (target) DO UPDATE"
		"   SET target_name = excluded.target_name, user_column = excluded.user_column,"
		"       action = excluded.action, state_column = excluded.state_column,"
		"       time_column = excluded.time_column, reason_column = excluded.reason_column,"
		"       incident_column = excluded.incident_column, created_column = excluded.created_column,"
		"       registered_at = now(), registered_by = excluded.registered_by"
		" RETURNING t.id";
	RevocationTarget target;
	IncidentRun dry_run;
	TargetBatch batch = {&target, &dry_run, NULL, 0, true, false};
	char		relkind;
	Oid			user_column_type;
	Oid			argtypes[10] = {REGCLASSOID, TEXTOID, NAMEOID, TEXTOID, NAMEOID, NAMEOID, NAMEOID,
	NAMEOID, NAMEOID, NAMEOID};
	Datum		values[10];
	char		nulls[10];
	bool		isnull;
	int32		id;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("register_revocation_target: target, user_column and action must not be NULL"),
				 errhint("For example SELECT ato.register_revocation_target('sessions', 'user_id', 'end', state_column => 'ended_at').")));

	memset(&target, 0, sizeof(target));
	memset(&dry_run, 0, sizeof(dry_run));
	target.relid = PG_GETARG_OID(0);
	target.user_column = name_arg(fcinfo, 1);
	target.action = target_action_from_name(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	target.state_column = name_arg(fcinfo, 3);
	target.time_column = name_arg(fcinfo, 4);
	target.reason_column = name_arg(fcinfo, 5);
	target.incident_column = name_arg(fcinfo, 6);
	target.created_column = name_arg(fcinfo, 7);

	relkind = get_rel_relkind(target.relid);
	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("register_revocation_target: relation with OID %u does not exist", target.relid),
				 errhint("Name an existing table.")));
	target.name = qualified_relation_name(target.relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("register_revocation_target: %s is not a table", target.name),
				 errhint("Register the table the application keeps its sessions, tokens or factors in.")));
	if (get_rel_namespace(target.relid) == get_namespace_oid(ATO_SCHEMA, false))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("register_revocation_target: %s belongs to the extension", target.name),
				 errhint("Register the application's own tables.")));

	require_privilege(target.relid, target.name, ACL_SELECT, "SELECT from");
	if (target.action == TARGET_DELETE)
		require_privilege(target.relid, target.name, ACL_DELETE, "DELETE from");
	else
		require_privilege(target.relid, target.name, ACL_UPDATE, "UPDATE");

	/*
	 * Incidents act on the table as its owner, whom its row-level security
	 * does not limit (unless forced): a role that its policies limit to some
	 * rows must not be able to have every row marked or deleted.
	 */
	if (check_enable_rls(target.relid, GetOuterUserId(), true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("register_revocation_target: row-level security limits role \"%s\" on table %s",
						GetUserNameFromId(GetOuterUserId(), false), target.name),
				 errhint("Incidents mark every row of the accounts, as the table's owner: register it as its owner, or as a role with BYPASSRLS.")));

	user_column_type = registered_column_type(target.relid, target.name, target.user_column,
											  "the account id");
	if (!OidIsValid(id_type_for_column(user_column_type)))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("register_revocation_target: column \"%s\" of %s is of type %s",
						target.user_column, target.name, format_type_be(user_column_type)),
				 errhint(ID_TYPES_HINT)));

	if (target.action == TARGET_DELETE)
	{
		forbid_column(target.state_column, "state_column", target.action);
		forbid_column(target.time_column, "time_column", target.action);
		forbid_column(target.reason_column, "reason_column", target.action);
		forbid_column(target.incident_column, "incident_column", target.action);
		require_column_type(target.relid, target.name, target.created_column,
							"the time a row was created", is_time_type, "a timestamp");
	}
	else
	{
		forbid_column(target.created_column, "created_column", target.action);
		if (target.state_column == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("register_revocation_target: action %s needs state_column",
							target_action_names[target.action]),
					 errhint("%s", target.action == TARGET_END ?
							 "Name the timestamp column that is NULL while a session lasts, such as ended_at." :
							 target.action == TARGET_REVOKE ?
							 "Name the boolean column that says a token is revoked, such as revoked." :
							 "Name the boolean column that says a row is active, such as active.")));
		if (target.action == TARGET_END)
			require_column_type(target.relid, target.name, target.state_column,
								"the time a session ended", is_time_type, "a timestamp");
		else
			require_column_type(target.relid, target.name, target.state_column,
								target.action == TARGET_REVOKE ? "whether a row is revoked" :
								"whether a row is active", is_boolean_type, "boolean");
		require_column_type(target.relid, target.name, target.time_column,
							"the time of the revocation", is_time_type, "a timestamp");
		require_column_type(target.relid, target.name, target.reason_column,
							"the reason", is_text_type, "text");
		require_column_type(target.relid, target.name, target.incident_column,
							"the incident id", is_incident_id_type, "uuid or text");
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* Prepare the statement once now, so that a mistake shows at once. */
	mark_target(&batch);
	notice_triggers_without_search_path(&target);

	values[0] = ObjectIdGetDatum(target.relid);
	values[1] = CStringGetTextDatum(target.name);
	values[2] = PG_GETARG_DATUM(1);
	values[3] = PG_GETARG_DATUM(2);
	for (int i = 4; i < 9; i++)
	{
		nulls[i] = PG_ARGISNULL(i - 1) ? 'n' : ' ';
		values[i] = PG_ARGISNULL(i - 1) ? (Datum) 0 : PG_GETARG_DATUM(i - 1);
	}
	memset(nulls, ' ', 4);
	/* the role that registered it (as SET ROLE made it), not the extension's owner */
	values[9] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false)));
	nulls[9] = ' ';
	if (SPI_execute_with_args(upsert_sql, 10, argtypes, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "registering revocation target %s failed", target.name);
	id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT32(id);
}
