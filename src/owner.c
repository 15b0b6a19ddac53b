/*
 * owner.c
 *     Who the extension acts as when a caller or a worker must not need
 *     privileges on its tables: the owner of a relation in schema ato.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "owner.h"

Oid
ato_relation_owner(const char *relname)
{
	Oid			nspid = get_namespace_oid("ato", true);
	Oid			relid;
	HeapTuple	tuple;
	Oid			owner;

	if (!OidIsValid(nspid) || !OidIsValid(relid = get_relname_relid(relname, nspid)))
		return InvalidOid;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}
