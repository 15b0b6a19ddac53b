/*
 * summary.h
 *     The writers' side of the per-account summaries (the refresh's is
 *     ato.summary_refresh_begin()): see src/summary.c.
 */
#ifndef ATO_SUMMARY_H
#define ATO_SUMMARY_H

#include "datatype/timestamp.h"

/*
 * A successful login with a known country is being stored: make sure the
 * summaries will include it even if it is behind their watermark.
 */
extern void summary_note_login(TimestampTz occurred_at);

/*
 * The start of the UTC day or hour (unit: USECS_PER_DAY or USECS_PER_HOUR)
 * holding t, rounding down also before 2000: the grain of the summaries'
 * late days and of the recent summaries' hours.
 */
static inline TimestampTz
summary_time_floor(TimestampTz t, int64 unit)
{
	TimestampTz rest = t % unit;

	return rest < 0 ? t - rest - unit : t - rest;
}

#endif							/* ATO_SUMMARY_H */
