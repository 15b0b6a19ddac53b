/*
 * ingest.c
 *     Validation and enrichment of events as they are stored: the row
 *     trigger function ato.enrich_event() that fires before every insert
 *     into and update of ato.login_events and ato.audit_events.
 *     ato.record_login(), ato.record_event(), INSERT and COPY all pass
 *     through it, so they accept, normalise and enrich rows exactly alike;
 *     it is the only place these rules are written (the tables have no
 *     CHECK constraints repeating them).
 *
 * What it does to a row:
 *   - rejects a NULL or empty user (actor) id, a NULL or infinite time, an
 *     outcome outside ato.login_outcomes() (required of a login event,
 *     optional on an audit event), an empty event type and ids, types,
 *     sources and session ids longer than include/identifiers.h allows,
 *     each with an SQLSTATE and a hint;
 *   - writes the outcome in lower case (Okta's SUCCESS becomes success);
 *   - when the row is new (recorded_at is NULL): stamps recorded_at, cuts a
 *     user agent to ato_response.max_user_agent_length bytes, and fills
 *     country_code, asn, as_org, latitude and longitude from the GeoIP
 *     databases when the row has an address, leaving any value the caller
 *     gave alone.  An unusable database never rejects the row.
 *   - a successful login from a known country is reported to summary.c,
 *     which sees that the per-account summaries will count it;
 *   - a row that comes with recorded_at (a restore, a copy between
 *     databases, any update of a stored row) is checked but otherwise kept
 *     as it is; an update that sets recorded_at to NULL has the row
 *     enriched again.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "ato_response.h"
#include "geoip.h"
#include "special_addresses.h"
#include "identifiers.h"
#include "summary.h"

typedef enum EventKind
{
	EVENT_LOGIN,
	EVENT_AUDIT
} EventKind;

/* Where the columns the trigger reads and writes sit in one relation. */
typedef struct EventColumns
{
	Oid			relid;
	EventKind	kind;
	const char *noun;			/* "login event" or "audit event" */
	const char *subject_name;	/* "user_id" or "actor_id" */
	AttrNumber	occurred_at;
	AttrNumber	recorded_at;
	AttrNumber	subject;
	AttrNumber	ip_address;
	AttrNumber	user_agent;
	AttrNumber	outcome;		/* required of login events, optional on audit events */
	AttrNumber	event_type;		/* audit events only */
	AttrNumber	country_code;
	AttrNumber	asn;
	AttrNumber	as_org;
	AttrNumber	latitude;
	AttrNumber	longitude;
	AttrNumber	source;
	AttrNumber	target_type;	/* audit events only */
	AttrNumber	target_id;		/* audit events only */
	AttrNumber	session_id;
} EventColumns;

/* The outcomes a login event may have (see ato.login_outcomes()). */
#define LOGIN_SUCCESS "success"
static const char *const login_outcomes[] = {LOGIN_SUCCESS, "failure", "challenge", "unknown", NULL};

/*
 * The row being stored, taken apart once: the checks read its columns and
 * the changes are written back into the same arrays.
 */
typedef struct EventRow
{
	Datum	   *values;
	bool	   *nulls;
	bool		changed;
} EventRow;

static AttrNumber
event_column(Relation rel, const char *name, Oid type)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum <= 0 || TupleDescAttr(tupdesc, attnum - 1)->atttypid != type)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table \"%s\" has no column \"%s\" of type %s",
						RelationGetRelationName(rel), name, format_type_be(type)),
				 errhint("ato.enrich_event() belongs on ato.login_events and ato.audit_events, whose columns it expects.")));
	return (AttrNumber) attnum;
}

static EventColumns *
event_columns(FunctionCallInfo fcinfo, TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	EventColumns *cols = (EventColumns *) fcinfo->flinfo->fn_extra;
	Trigger    *trigger = trigdata->tg_trigger;
	EventKind	kind;

	if (cols != NULL && cols->relid == RelationGetRelid(rel))
		return cols;

	if (trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ato.enrich_event() takes one trigger argument: 'login' or 'audit'"),
				 errhint("Create the trigger with EXECUTE FUNCTION ato.enrich_event('login') or ato.enrich_event('audit').")));
	if (strcmp(trigger->tgargs[0], "login") == 0)
		kind = EVENT_LOGIN;
	else if (strcmp(trigger->tgargs[0], "audit") == 0)
		kind = EVENT_AUDIT;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown event kind \"%s\"", trigger->tgargs[0]),
				 errhint("The trigger argument is 'login' or 'audit'.")));

	if (cols == NULL)
		cols = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(EventColumns));
	else
		memset(cols, 0, sizeof(EventColumns));
	cols->kind = kind;
	cols->noun = kind == EVENT_LOGIN ? "login event" : "audit event";
	cols->subject_name = kind == EVENT_LOGIN ? "user_id" : "actor_id";
	cols->occurred_at = event_column(rel, "occurred_at", TIMESTAMPTZOID);
	cols->recorded_at = event_column(rel, "recorded_at", TIMESTAMPTZOID);
	cols->subject = event_column(rel, cols->subject_name, TEXTOID);
	cols->ip_address = event_column(rel, "ip_address", INETOID);
	cols->user_agent = event_column(rel, "user_agent", TEXTOID);
	cols->outcome = event_column(rel, "outcome", TEXTOID);
	if (kind == EVENT_AUDIT)
		cols->event_type = event_column(rel, "event_type", TEXTOID);
	cols->country_code = event_column(rel, "country_code", TEXTOID);
	cols->asn = event_column(rel, "asn", INT8OID);
	cols->as_org = event_column(rel, "as_org", TEXTOID);
	cols->latitude = event_column(rel, "latitude", FLOAT8OID);
	cols->longitude = event_column(rel, "longitude", FLOAT8OID);
	cols->source = event_column(rel, "source", TEXTOID);
	if (kind == EVENT_AUDIT)
	{
		cols->target_type = event_column(rel, "target_type", TEXTOID);
		cols->target_id = event_column(rel, "target_id", TEXTOID);
	}
	cols->session_id = event_column(rel, "session_id", TEXTOID);
	cols->relid = RelationGetRelid(rel);
	fcinfo->flinfo->fn_extra = cols;
	return cols;
}

static inline bool
column_is_null(const EventRow *row, AttrNumber attnum)
{
	return row->nulls[attnum - 1];
}

static inline Datum
column_value(const EventRow *row, AttrNumber attnum)
{
	return row->values[attnum - 1];
}

/* The column's value as text, or NULL. */
static text *
text_column(const EventRow *row, AttrNumber attnum)
{
	return column_is_null(row, attnum) ? NULL : DatumGetTextPP(column_value(row, attnum));
}

static void
set_column(EventRow *row, AttrNumber attnum, Datum value)
{
	row->values[attnum - 1] = value;
	row->nulls[attnum - 1] = false;
	row->changed = true;
}

static void
check_occurred_at(const EventRow *row, const EventColumns *cols)
{
	if (column_is_null(row, cols->occurred_at))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s has no occurred_at", cols->noun),
				 errhint("Give the time of the event, or leave the column out to store now().")));
	if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(column_value(row, cols->occurred_at))))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s occurred_at must be a finite time", cols->noun),
				 errhint("Events happen at a real time; infinity and -infinity are not accepted.")));
}

/*
 * A new event dated further ahead of the clock than
 * ato_response.max_future_skew is refused: it would count before it
 * happened.  (recorded_at, stamped next to it, tells a backdated write from
 * history.)  A stored row loaded again keeps its time.
 */
static void
check_not_in_future(const EventRow *row, const EventColumns *cols)
{
	TimestampTz occurred_at = DatumGetTimestampTz(column_value(row, cols->occurred_at));
	TimestampTz limit;

	if (ato_max_future_skew < 0)
		return;
	limit = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), (int64) ato_max_future_skew * 1000);
	if (occurred_at > limit)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s occurred_at %s is more than ato_response.max_future_skew (%d s) ahead of the server's clock",
						cols->noun, timestamptz_to_str(occurred_at), ato_max_future_skew),
				 errhint("Record events when they happen, with the time they happened; check the writer's clock.")));
}

static void
check_subject(const EventRow *row, const EventColumns *cols)
{
	text	   *subject = text_column(row, cols->subject);

	if (subject == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s has no %s", cols->noun, cols->subject_name),
				 errhint("Every event belongs to an account: give its id as text (uuid, number, e-mail and Okta ids all fit).")));
	if (VARSIZE_ANY_EXHDR(subject) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has an empty %s", cols->noun, cols->subject_name),
				 errhint("Give the account's id; an empty string names no account.")));
}

/*
 * Check the outcome and write it in its canonical lower-case spelling, which
 * it returns (an element of login_outcomes).  A login event must have one;
 * an audit event may leave it NULL (not said: the action is taken as done),
 * for which NULL is returned.
 */
static const char *
normalise_outcome(EventRow *row, const EventColumns *cols)
{
	text	   *outcome = text_column(row, cols->outcome);
	const char *given;
	int			length;
	int			i;

	if (outcome == NULL && cols->kind == EVENT_AUDIT)
		return NULL;
	if (outcome == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("login event has no outcome"),
				 errhint("The outcome is one of: success, failure, challenge, unknown.")));

	given = VARDATA_ANY(outcome);
	length = VARSIZE_ANY_EXHDR(outcome);
	for (i = 0; login_outcomes[i] != NULL; i++)
	{
		const char *known = login_outcomes[i];

		if ((int) strlen(known) != length || pg_strncasecmp(given, known, length) != 0)
			continue;
		if (memcmp(given, known, length) != 0)
			set_column(row, cols->outcome, CStringGetTextDatum(known));
		return known;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown %s outcome \"%s\"", cols->kind == EVENT_LOGIN ? "login" : "audit",
					text_to_cstring(outcome)),
			 errhint("The outcome is one of: success, failure, challenge, unknown (in any letter case).")));
}

static void
check_event_type(const EventRow *row, const EventColumns *cols)
{
	text	   *event_type = text_column(row, cols->event_type);

	if (event_type == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audit event has no event_type"),
				 errhint("Name the event with a dotted type such as user.email_changed.")));
	if (VARSIZE_ANY_EXHDR(event_type) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit event has an empty event_type"),
				 errhint("Name the event with a dotted type such as user.email_changed.")));
}

/*
 * Refuse an identifier longer than limit bytes: ids end up in the keys of
 * the summaries and response tables, where one over-long id would make
 * every later refresh fail.
 */
static void
check_length(const EventRow *row, const EventColumns *cols, AttrNumber attnum,
			 const char *column, int limit)
{
	text	   *value;
	int			length;

	if (attnum == InvalidAttrNumber || (value = text_column(row, attnum)) == NULL)
		return;
	length = VARSIZE_ANY_EXHDR(value);
	if (length > limit)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s %s is %d bytes long, more than the %d accepted",
						cols->noun, column, length, limit),
				 errhint("Ids are at most %d bytes, event types, sources and target types at most %d; store a longer value in metadata.",
						 ATO_MAX_ACCOUNT_ID_BYTES, ATO_MAX_NAME_BYTES)));
}

static void
check_lengths(const EventRow *row, const EventColumns *cols)
{
	check_length(row, cols, cols->subject, cols->subject_name, ATO_MAX_ACCOUNT_ID_BYTES);
	check_length(row, cols, cols->source, "source", ATO_MAX_NAME_BYTES);
	check_length(row, cols, cols->event_type, "event_type", ATO_MAX_NAME_BYTES);
	check_length(row, cols, cols->target_type, "target_type", ATO_MAX_NAME_BYTES);
	check_length(row, cols, cols->target_id, "target_id", ATO_MAX_ACCOUNT_ID_BYTES);
	check_length(row, cols, cols->session_id, "session_id", ATO_MAX_ACCOUNT_ID_BYTES);
}

static void
check_coordinate(const EventRow *row, const EventColumns *cols, AttrNumber attnum,
				 const char *column, double limit)
{
	double		value;

	if (column_is_null(row, attnum))
		return;
	value = DatumGetFloat8(column_value(row, attnum));
	if (!(value >= -limit && value <= limit))	/* NaN fails too */
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s %s %g is not between -%g and %g", cols->noun, column, value, limit, limit),
				 errhint("Give coordinates in decimal degrees (WGS 84), or leave them NULL to take them from GeoIP.")));
}

static inline bool
is_ascii_letter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * A caller's country code must be two ASCII letters (ISO 3166 alpha-2); it
 * is stored in upper case, as GeoIP gives it, so that both spellings name
 * one country.  Coordinates must be real degrees: the distances of
 * impossible_travel would fail on anything else, at every run.
 */
static void
check_place(EventRow *row, const EventColumns *cols)
{
	text	   *country = text_column(row, cols->country_code);

	check_coordinate(row, cols, cols->latitude, "latitude", 90);
	check_coordinate(row, cols, cols->longitude, "longitude", 180);
	if (country == NULL)
		return;
	if (VARSIZE_ANY_EXHDR(country) != 2 ||
		!is_ascii_letter(VARDATA_ANY(country)[0]) || !is_ascii_letter(VARDATA_ANY(country)[1]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s country_code \"%s\" is not a two-letter country code", cols->noun,
						VARSIZE_ANY_EXHDR(country) <= 8 ? text_to_cstring(country) : "..."),
				 errhint("Give an ISO 3166 alpha-2 code such as US, or leave it NULL to take it from GeoIP.")));
	if (VARDATA_ANY(country)[0] >= 'a' || VARDATA_ANY(country)[1] >= 'a')
	{
		char		upper[3] = {pg_ascii_toupper(VARDATA_ANY(country)[0]),
		pg_ascii_toupper(VARDATA_ANY(country)[1]), '\0'};

		set_column(row, cols->country_code, CStringGetTextDatum(upper));
	}
}

static void
clip_user_agent(EventRow *row, const EventColumns *cols)
{
	text	   *agent = text_column(row, cols->user_agent);
	int			length;
	int			keep;

	if (agent == NULL)
		return;
	length = VARSIZE_ANY_EXHDR(agent);
	if (length <= ato_max_user_agent_length)
		return;
	keep = pg_mbcliplen(VARDATA_ANY(agent), length, ato_max_user_agent_length);
	set_column(row, cols->user_agent,
			   PointerGetDatum(cstring_to_text_with_len(VARDATA_ANY(agent), keep)));
}

/* Fill the GeoIP columns the caller left empty. */
static void
enrich(EventRow *row, const EventColumns *cols)
{
	GeoAnswer	answer;

	if (column_is_null(row, cols->ip_address))
		return;
	if (!column_is_null(row, cols->country_code) &&
		!column_is_null(row, cols->asn) &&
		!column_is_null(row, cols->latitude))
		return;					/* the caller enriched it already */

	/* a private, shared, documentation ... address has no place on a public map */
	if (!ato_locate_special_addresses &&
		ato_special_purpose_address(DatumGetInetPP(column_value(row, cols->ip_address))))
		return;
	geo_lookup(DatumGetInetPP(column_value(row, cols->ip_address)),
			   GEO_FOR_ENRICHMENT, false, &answer);
	if (!answer.found)
		return;

	if (answer.country_code[0] != '\0' && column_is_null(row, cols->country_code))
		set_column(row, cols->country_code, CStringGetTextDatum(answer.country_code));
	if (answer.has_asn && column_is_null(row, cols->asn))
		set_column(row, cols->asn, Int64GetDatum(answer.asn));
	if (answer.as_org != NULL && column_is_null(row, cols->as_org))
		set_column(row, cols->as_org, CStringGetTextDatum(answer.as_org));
	if (answer.has_location &&
		column_is_null(row, cols->latitude) && column_is_null(row, cols->longitude))
	{
		set_column(row, cols->latitude, Float8GetDatum(answer.latitude));
		set_column(row, cols->longitude, Float8GetDatum(answer.longitude));
	}
}

PG_FUNCTION_INFO_V1(ato_enrich_event);

Datum
ato_enrich_event(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleTableSlot *slot;
	TupleDesc	tupdesc;
	EventColumns *cols;
	EventRow	row;
	const char *outcome = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ato.enrich_event() must fire BEFORE INSERT OR UPDATE FOR EACH ROW"),
				 errhint("It is a row trigger function of the event tables; it cannot be called directly.")));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		tuple = trigdata->tg_newtuple;
		slot = trigdata->tg_newslot;
	}
	else
	{
		tuple = trigdata->tg_trigtuple;
		slot = trigdata->tg_trigslot;
	}
	tupdesc = RelationGetDescr(trigdata->tg_relation);
	cols = event_columns(fcinfo, trigdata);

	/*
	 * Take the columns from the executor's slot, which COPY and INSERT have
	 * already filled column by column, rather than taking the tuple apart
	 * again.
	 */
	row.values = palloc(tupdesc->natts * sizeof(Datum));
	row.nulls = palloc(tupdesc->natts * sizeof(bool));
	row.changed = false;
	if (slot != NULL && slot->tts_tupleDescriptor->natts == tupdesc->natts)
	{
		slot_getallattrs(slot);
		memcpy(row.values, slot->tts_values, tupdesc->natts * sizeof(Datum));
		memcpy(row.nulls, slot->tts_isnull, tupdesc->natts * sizeof(bool));
	}
	else
		heap_deform_tuple(tuple, tupdesc, row.values, row.nulls);

	check_occurred_at(&row, cols);
	check_subject(&row, cols);
	outcome = normalise_outcome(&row, cols);
	if (cols->kind == EVENT_AUDIT)
		check_event_type(&row, cols);
	check_lengths(&row, cols);
	check_place(&row, cols);

	/*
	 * A row without recorded_at is being stored for the first time: stamp it,
	 * cut its user agent and look its address up.  A row that has one was
	 * stored before and is being loaded again (pg_dump and restore, a copy
	 * between databases): it is kept as it was, so that a restore brings
	 * back the events as they were recorded rather than as this server would
	 * record them today.
	 */
	if (column_is_null(&row, cols->recorded_at))
	{
		check_not_in_future(&row, cols);
		set_column(&row, cols->recorded_at,
				   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));
		clip_user_agent(&row, cols);
		enrich(&row, cols);
	}

	/* what the per-account summaries count: a successful login (with or without a country) */
	if (cols->kind == EVENT_LOGIN && strcmp(outcome, LOGIN_SUCCESS) == 0)
		summary_note_login(DatumGetTimestampTz(column_value(&row, cols->occurred_at)));

	if (row.changed)
	{
		HeapTuple	changed = heap_form_tuple(tupdesc, row.values, row.nulls);

		changed->t_self = tuple->t_self;
		changed->t_tableOid = tuple->t_tableOid;
		tuple = changed;
	}

	pfree(row.values);
	pfree(row.nulls);
	return PointerGetDatum(tuple);
}

PG_FUNCTION_INFO_V1(ato_login_outcomes);

/* ato.login_outcomes(): the outcomes a login event may have */
Datum
ato_login_outcomes(PG_FUNCTION_ARGS)
{
	Datum		elems[lengthof(login_outcomes) - 1];
	int			i;

	for (i = 0; login_outcomes[i] != NULL; i++)
		elems[i] = CStringGetTextDatum(login_outcomes[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, i, TEXTOID, -1, false, TYPALIGN_INT));
}
