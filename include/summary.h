/*
 * summary.h
 *     The write-time side of the per-account summaries: see src/summary.c.
 */
#ifndef ATO_SUMMARY_H
#define ATO_SUMMARY_H

#include "datatype/timestamp.h"

/*
 * A successful login with a known country is being stored: make sure the
 * summaries will include it even if it is behind their watermark.
 */
extern void summary_note_login(TimestampTz occurred_at);

#endif							/* ATO_SUMMARY_H */
