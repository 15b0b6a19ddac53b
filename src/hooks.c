/*
 * hooks.c
 *     The application's functions that the response calls for one account:
 *     what identifies the account to its user (a detail a phisher would not
 *     have), where the user can be reached on a secondary channel, whether
 *     the account uses a downstream application or could reach a secret.
 *
 * A hook is a function of the application taking the account id (text) and
 * returning text or boolean.  Only a role that owns the function (or is a
 * member of its owner) may register it, and it is always called as its
 * owner, in a security-restricted operation with a pinned search_path
 * (src/owner.c), the way an incident runs a registered table's triggers: so
 * it never runs with more rights than its owner has, even though the SQL
 * functions that call it run as the extension's owner.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "ato_response.h"
#include "owner.h"

/* What a hook returns, at most, in bytes. */
#define ATO_HOOK_MAX_RESULT 2000

static bool
proc_executable_by(Oid fn, Oid role)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ProcedureRelationId, fn, role, ACL_EXECUTE) == ACLCHECK_OK;
#else
	return pg_proc_aclcheck(fn, role, ACL_EXECUTE) == ACLCHECK_OK;
#endif
}

/*
 * The hook's pg_proc facts, checked: one argument of type text, a plain
 * function (not a set, not a procedure or aggregate) returning the type
 * expected, outside schemas ato and pg_catalog.  caller names the SQL
 * function in messages.
 */
static Oid
checked_hook_owner(const char *caller, Oid fn, Oid rettype)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Form_pg_proc proc;
	Oid			owner;
	char	   *name;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s: function with OID %u does not exist", caller, fn),
				 errhint("A registered hook was dropped: register it again, or unregister it.")));
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	name = format_procedure(fn);
	if (proc->prokind != PROKIND_FUNCTION || proc->proretset || proc->pronargs != 1 ||
		proc->proargtypes.values[0] != TEXTOID || proc->prorettype != rettype)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("%s: %s is not a function of one text argument returning %s",
						caller, name, format_type_be(rettype)),
				 errhint("A hook takes the account id as text and returns %s, one value (not a set).",
						 format_type_be(rettype))));
	if (proc->pronamespace == PG_CATALOG_NAMESPACE ||
		proc->pronamespace == get_namespace_oid(ATO_SCHEMA, true))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s is not a function of the application", caller, name),
				 errhint("Register a function of the application's own schema.")));
	owner = proc->proowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * ato.check_hook(hook regprocedure, returns regtype, caller text): an error
 * unless the hook has the right shape and the role that asks (as SET ROLE
 * made it, not the extension's owner the SQL function runs as) has the
 * privileges of its owner: it is called as that owner.
 */
PG_FUNCTION_INFO_V1(ato_check_hook);
Datum
ato_check_hook(PG_FUNCTION_ARGS)
{
	const char *caller = PG_ARGISNULL(2) ? "check_hook" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	Oid			fn;
	Oid			owner;
	Oid			asking = GetOuterUserId();

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: hook must not be NULL", caller),
				 errhint("Pass the function, for example 'app.account_hint(text)'::regprocedure.")));
	fn = PG_GETARG_OID(0);
	owner = checked_hook_owner(caller, fn, PG_GETARG_OID(1));
	if (!has_privs_of_role(asking, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s: role \"%s\" does not own %s", caller,
						GetUserNameFromId(asking, false), format_procedure(fn)),
				 errhint("A hook runs as its owner: only its owner (or a member of the owner role) may register it.")));
	PG_RETURN_VOID();
}

typedef struct HookCall
{
	Oid			fn;
	const char *user_id;
} HookCall;

static void
hook_call_context(void *arg)
{
	HookCall   *call = (HookCall *) arg;

	errcontext("hook %s called for account \"%s\"", format_procedure(call->fn), call->user_id);
}

/*
 * ato.call_hook(hook regprocedure, returns regtype, user_id text) RETURNS
 * text: the hook's value for the account, as text (NULL stays NULL), called
 * as the hook's owner in a security-restricted operation.  At most
 * ATO_HOOK_MAX_RESULT bytes.
 */
PG_FUNCTION_INFO_V1(ato_call_hook);
Datum
ato_call_hook(PG_FUNCTION_ARGS)
{
	Oid			fn;
	Oid			rettype;
	Oid			owner;
	FmgrInfo	flinfo;
	LOCAL_FCINFO(hookinfo, 1);
	ActingAs	acting;
	ErrorContextCallback context;
	HookCall	call;
	Datum		result;
	bool		isnull;
	Oid			output;
	bool		varlena;
	char	   *value;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("call_hook: hook, returns and user_id must not be NULL"),
				 errhint("The notification and downstream functions call it with a registered hook and an account.")));
	fn = PG_GETARG_OID(0);
	rettype = PG_GETARG_OID(1);
	call.fn = fn;
	call.user_id = text_to_cstring(PG_GETARG_TEXT_PP(2));
	owner = checked_hook_owner("call_hook", fn, rettype);
	if (!proc_executable_by(fn, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("call_hook: the owner of %s may not execute it", format_procedure(fn)),
				 errhint("GRANT EXECUTE on the hook to its owner again, or register another one.")));

	context.callback = hook_call_context;
	context.arg = &call;
	context.previous = error_context_stack;
	error_context_stack = &context;

	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*hookinfo, &flinfo, 1, DEFAULT_COLLATION_OID, NULL, NULL);
	hookinfo->args[0].value = PG_GETARG_DATUM(2);
	hookinfo->args[0].isnull = false;
	ato_act_as(owner, &acting);
	result = FunctionCallInvoke(hookinfo);
	isnull = hookinfo->isnull;
	ato_act_as_end(&acting);

	error_context_stack = context.previous;

	if (isnull)
		PG_RETURN_NULL();
	getTypeOutputInfo(rettype, &output, &varlena);
	value = OidOutputFunctionCall(output, result);
	if (strlen(value) > ATO_HOOK_MAX_RESULT)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("call_hook: %s returned %zu bytes for account \"%s\", more than %d",
						format_procedure(fn), strlen(value), call.user_id, ATO_HOOK_MAX_RESULT),
				 errhint("A hook returns one short value: a detail of the account, an address, true or false.")));
	PG_RETURN_TEXT_P(cstring_to_text(value));
}
