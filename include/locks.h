/*
 * locks.h
 *     The extension's own locks, in one place: advisory lock tags that no
 *     role can take from SQL (pg_advisory_lock() and its kin always set the
 *     tag's fourth field to 1 or 2; these use ATO_LOCK_SPACE), so that no
 *     connected role can hold one to stop a refresh or the detection worker.
 *     pg_locks shows them as locktype advisory, classid 1096044370 ("ATOR"),
 *     objid the lock below, objsubid 16724.
 */
#ifndef ATO_LOCKS_H
#define ATO_LOCKS_H

#include "miscadmin.h"
#include "storage/lock.h"

#define ATO_LOCK_SPACE 0x4154	/* "AT" */

typedef enum AtoLock
{
	ATO_LOCK_DETECTION_WORKER = 1,	/* one detection worker per database */
	ATO_LOCK_SUMMARY_REFRESH = 2,	/* one refresh of the summaries at a time */
	ATO_LOCK_LOGIN_GATE = 3,	/* keyed by account bucket: src/fence.c */
	ATO_LOCK_LOGIN_ACCOUNT = 4,	/* keyed by 24 bits of an account's hash: src/fence.c */
	ATO_LOCK_EVENT_LAYOUT = 5	/* no month attached under a reader: src/event_layout.c */
} AtoLock;

static inline void
ato_lock_tag(LOCKTAG *tag, AtoLock lock)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x41544f52, (uint32) lock, ATO_LOCK_SPACE);
}

/* One of a family of locks: objid is the lock plus key * 256. */
static inline void
ato_keyed_lock_tag(LOCKTAG *tag, AtoLock lock, uint32 key)
{
	Assert(key < (1U << 24));
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x41544f52, (uint32) lock | key << 8, ATO_LOCK_SPACE);
}

#endif							/* ATO_LOCKS_H */
