/*
 * owner.c
 *     Who the extension acts as, and how it switches: the owner of a
 *     relation in schema ato (when a caller or a worker must not need
 *     privileges on the extension's tables), or the owner of an
 *     application's table (when an incident marks its rows: its triggers,
 *     defaults, rules, policies and index expressions are that owner's code
 *     and must never run with more rights than the owner has).
 *
 * And who called: ato.calling_role(), the role a caller acts as, which a
 * SECURITY DEFINER function's current_user hides.
 *
 * Either way the switch is the one PostgreSQL's own maintenance commands
 * make (vacuum.c, analyze.c): SetUserIdAndSecContext() with
 * SECURITY_RESTRICTED_OPERATION, so the code cannot SET ROLE back, create
 * temporary objects, or leave deferred triggers to fire later as someone
 * else, and a new GUC nest level with search_path pinned to
 * "pg_catalog, pg_temp", so that no operator or function planted in a
 * writable schema is picked up.  The abort of a (sub)transaction restores
 * both, so an error between the switch and its end needs no cleanup.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "ato_response.h"
#include "owner.h"

Oid
ato_relation_id(const char *relname)
{
	Oid			nspid = get_namespace_oid(ATO_SCHEMA, true);

	return OidIsValid(nspid) ? get_relname_relid(relname, nspid) : InvalidOid;
}

Oid
ato_relation_owner(const char *relname)
{
	Oid			relid = ato_relation_id(relname);

	return OidIsValid(relid) ? ato_table_owner(relid) : InvalidOid;
}

Oid
ato_table_owner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("It was dropped while the extension was using it.")));
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

void
ato_act_as(Oid role, ActingAs *saved)
{
	GetUserIdAndSecContext(&saved->save_userid, &saved->save_sec_context);
	SetUserIdAndSecContext(role, saved->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	saved->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", ATO_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
ato_act_as_end(const ActingAs *saved)
{
	AtEOXact_GUC(false, saved->save_nestlevel);
	SetUserIdAndSecContext(saved->save_userid, saved->save_sec_context);
}

void
ato_pin_session_search_path(void)
{
	SetConfigOption("search_path", ATO_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION);
}

/*
 * ato.calling_role() RETURNS name: the role the caller acts as (its SET ROLE,
 * or its session's), which current_user no longer is inside a SECURITY
 * DEFINER function; what the incident record writes beside session_user,
 * and who registered a hook, a downstream application or a secret.
 */
PG_FUNCTION_INFO_V1(ato_calling_role);
Datum
ato_calling_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false))));
}
