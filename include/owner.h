/*
 * owner.h
 *     Acting as another role: the owner of the extension's relations, or the
 *     owner of an application's table, always in a security-restricted
 *     operation with a pinned search_path.  See src/owner.c.
 */
#ifndef ATO_OWNER_H
#define ATO_OWNER_H

/* The search_path every statement of the extension runs with. */
#define ATO_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/* What ato_act_as() saved, for ato_act_as_end(). */
typedef struct ActingAs
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} ActingAs;

/*
 * The owner of relation ato.<relname>, or InvalidOid when it does not exist
 * (the extension is not installed in this database, or is of an older
 * version).  Needs a transaction.
 */
extern Oid	ato_relation_owner(const char *relname);

/* The oid of relation ato.<relname>, or InvalidOid. */
extern Oid	ato_relation_id(const char *relname);

/* The owner of any relation; an error if it does not exist. */
extern Oid	ato_table_owner(Oid relid);

/*
 * Run what follows as role, in a security-restricted operation (the way
 * VACUUM and ANALYZE run a table's code), with search_path pinned to
 * ATO_SAFE_SEARCH_PATH, until ato_act_as_end().  An error in between is
 * undone by the (sub)transaction's abort, as for VACUUM.
 */
extern void ato_act_as(Oid role, ActingAs *saved);
extern void ato_act_as_end(const ActingAs *saved);

/* Pin search_path for the rest of this session (background workers). */
extern void ato_pin_session_search_path(void);

#endif							/* ATO_OWNER_H */
