/*
 * detect.h
 *     What the detection functions share (src/detect.c): the query a
 *     function runs and how its rows are returned, the checks of its
 *     arguments, and how far the per-account summaries reach.  The functions
 *     themselves are in src/detect_hunt.c (the hunt's questions) and
 *     src/detect_kit.c (the rest of the kit).
 */
#ifndef ATO_DETECT_H
#define ATO_DETECT_H

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"

#define DETECT_MAX_ARGS 8

/* One query of a detection function and its arguments. */
typedef struct DetectQuery
{
	const char *name;			/* the SQL function, for messages */
	const char *sql;
	int			nargs;
	Oid			types[DETECT_MAX_ARGS];
	Datum		values[DETECT_MAX_ARGS];
	char		nulls[DETECT_MAX_ARGS];

	/*
	 * Where to keep one generic plan for the life of the backend, or NULL to
	 * plan every call with the arguments' values.  Only for queries whose
	 * best plan does not depend on them (index scans by account): a time
	 * window needs its bounds to choose between BRIN and a scan.
	 */
	SPIPlanPtr *saved_plan;

	/*
	 * The query reads days of history the summaries do not cover yet
	 * (unsummarised_from() says so): planned without nested loops, since
	 * the statistics of a history just loaded (none yet, or a sample from
	 * before the load) make the planner take a scan of it for a few rows
	 * and probe it once per login of the window.
	 */
	bool		reads_history;
} DetectQuery;

/* How far the summaries reach, from ato.summary_status. */
typedef struct SummaryCoverage
{
	/*
	 * The earlier of the watermark and the first late day: every successful
	 * login before it is counted; -infinity when nothing is.
	 */
	TimestampTz until;
	bool		late_days;		/* some late events are not folded in yet */
	/* the recent summaries hold the logins from here to "until" */
	TimestampTz recent_from;
} SummaryCoverage;

extern void detect_arg(DetectQuery *query, Oid type, Datum value, bool isnull);
extern void detect_return_rows(FunctionCallInfo fcinfo, DetectQuery *query);

extern void require_arg(FunctionCallInfo fcinfo, int argno, const char *function, const char *name,
						const char *hint);
extern TimestampTz since_arg(FunctionCallInfo fcinfo, int argno, const char *function);
extern Interval *positive_interval_arg(FunctionCallInfo fcinfo, int argno, const char *function,
									   const char *name);
extern ArrayType *array_arg(FunctionCallInfo fcinfo, int argno, const char *function, const char *name,
							const char *hint);
extern int32 count_arg(FunctionCallInfo fcinfo, int argno, const char *function, const char *name);
extern float8 number_arg(FunctionCallInfo fcinfo, int argno, const char *function, const char *name,
						 float8 low, float8 high);

extern SummaryCoverage summary_coverage(void);
extern TimestampTz recent_summaries_from(TimestampTz since, const SummaryCoverage *coverage);
extern TimestampTz unsummarised_from(DetectQuery *query, TimestampTz since, TimestampTz summarised_to);

/*
 * The SQL condition "the account had no successful login from the country
 * before since": neither the summaries nor the unsummarised stretch before
 * since (from tail_from on; tail_from = since when there is none) hold one.
 * A NULL country is never familiar.  Written as two NOT EXISTS so that the
 * planner makes anti-joins of them: an index probe into the summaries, a
 * hash of the stretch.
 */
#define UNFAMILIAR_COUNTRY(user_id, country, since, tail_from) \
	"NOT EXISTS (SELECT FROM ato.account_countries k" \
	"             WHERE k.user_id = " user_id " AND k.country_code = " country \
	"               AND k.first_success_at < " since ")" \
	" AND NOT EXISTS (SELECT FROM ato.login_events t" \
	"                  WHERE t.user_id = " user_id " AND t.country_code = " country \
	"                    AND t.outcome = 'success' AND t.occurred_at >= " tail_from \
	"                    AND t.occurred_at < " since ")"

#endif							/* ATO_DETECT_H */
