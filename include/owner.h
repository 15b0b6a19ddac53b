/*
 * owner.h
 *     The owner of the extension's relations: see src/owner.c.
 */
#ifndef ATO_OWNER_H
#define ATO_OWNER_H

/*
 * The owner of relation ato.<relname>, or InvalidOid when it does not exist
 * (the extension is not installed in this database, or is of an older
 * version).  Needs a transaction.
 */
extern Oid	ato_relation_owner(const char *relname);

#endif							/* ATO_OWNER_H */
