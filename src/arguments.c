/*
 * arguments.c
 *     The one rule for account ids passed to the extension's functions: a
 *     NULL is 22004 (null_value_not_allowed), an empty id 22023
 *     (invalid_parameter_value), each naming the function and its argument.
 *     The C functions call ato_check_account_id(); the SQL ones
 *     ato.check_account_id() and ato.check_account_ids().
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "arguments.h"

void
ato_check_account_id(const char *caller, const char *argument, bool isnull, Datum user_id)
{
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: %s must not be NULL", caller, argument),
				 errhint("Pass the id of the account as text.")));
	if (VARSIZE_ANY_EXHDR(DatumGetTextPP(user_id)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s must not be empty", caller, argument),
				 errhint("An empty string names no account; pass the id of the account.")));
}

static char *
text_arg(FunctionCallInfo fcinfo, int argno, const char *missing)
{
	return PG_ARGISNULL(argno) ? pstrdup(missing) : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* ato.check_account_id(caller text, argument text, user_id text) */
PG_FUNCTION_INFO_V1(ato_check_account_id_sql);
Datum
ato_check_account_id_sql(PG_FUNCTION_ARGS)
{
	ato_check_account_id(text_arg(fcinfo, 0, "?"), text_arg(fcinfo, 1, "?"),
						 PG_ARGISNULL(2), PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2));
	PG_RETURN_VOID();
}

/* ato.check_account_ids(caller text, argument text, user_ids text[]) */
PG_FUNCTION_INFO_V1(ato_check_account_ids_sql);
Datum
ato_check_account_ids_sql(PG_FUNCTION_ARGS)
{
	const char *caller = text_arg(fcinfo, 0, "?");
	const char *argument = text_arg(fcinfo, 1, "?");
	ArrayType  *ids;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: %s must not be NULL", caller, argument),
				 errhint("Pass an array of account ids, for example ARRAY['alice'].")));
	ids = PG_GETARG_ARRAYTYPE_P(2);
	if (ARR_ELEMTYPE(ids) != TEXTOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s: %s must be a text array", caller, argument),
				 errhint("Pass the account ids as text[].")));
	deconstruct_array(ids, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s is empty", caller, argument),
				 errhint("Pass an array of account ids, for example ARRAY['alice'].")));
	for (int i = 0; i < n; i++)
	{
		char		element[NAMEDATALEN * 2];

		snprintf(element, sizeof(element), "%s[%d]", argument, i + 1);
		ato_check_account_id(caller, element, nulls[i], elems[i]);
	}
	PG_RETURN_VOID();
}
