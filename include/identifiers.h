/*
 * identifiers.h
 *     The longest identifiers the extension accepts, in bytes: the one
 *     place these limits are written.  They keep every stored id well
 *     inside a B-tree entry (2704 bytes), so that no single row can make an
 *     index of the summaries or of the response tables refuse it later.
 */
#ifndef ATO_IDENTIFIERS_H
#define ATO_IDENTIFIERS_H

/* user ids, actor ids, target ids */
#define ATO_MAX_ACCOUNT_ID_BYTES 1000

/* event types, sources, target types */
#define ATO_MAX_NAME_BYTES 200

#endif							/* ATO_IDENTIFIERS_H */
