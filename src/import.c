/*
 * import.c
 *     The C side of importing identity-provider logs, the bulk path.  The
 *     SQL side, one mapping function per provider, ato.import_events() and
 *     ato.import_batch(), is in install/sections/11_import.sql and calls
 *     nothing of this file (the GeoIP question ato.import_batch() asks,
 *     ato.geoip_coverage(), is answered by src/geoip.c); the views and
 *     triggers below are declared in install/sections/11_import_bulk.sql.
 *
 *     The views ato.okta_import, ato.auth0_import and
 *     ato.entra_import take one event per row, as COPY reads a JSON-lines
 *     file.  Their INSTEAD OF row trigger, ato.import_line(), only keeps
 *     each line; every IMPORT_BATCH_LINES lines (or IMPORT_BATCH_BYTES), and
 *     at the end of the statement (the AFTER statement trigger,
 *     ato.import_lines_end()), the lines kept are stored by one call of
 *     ato.import_batch(provider, NULL, lines), which parses and maps them in
 *     one set-based statement per batch.  One bad line costs its batch a few
 *     more statements, never the COPY: it ends in ato.import_rejections.
 *     An event stored before (the same provider, event id and time) is
 *     skipped and counted as already stored.
 *
 * The lines kept belong to the statement loading the view.  They live in a
 * context under TopTransactionContext, and are dropped when the
 * (sub)transaction that kept them aborts: a COPY that fails inside a
 * savepoint leaves nothing behind for the next one.  The aborts of the
 * subtransactions ato.import_batch() itself runs (one per batch that a bad
 * line splits) happen while a batch is being stored, and are told apart.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "owner.h"

/* lines kept before they are stored */
#define IMPORT_BATCH_LINES	10000
#define IMPORT_BATCH_BYTES	(32 * 1024 * 1024)

/* The lines one statement is loading into an import view. */
typedef struct PendingImport
{
	MemoryContext cxt;			/* this struct, the provider */
	MemoryContext lines_cxt;	/* the lines of the current batch */
	Oid			view;
	SubTransactionId subxid;	/* the (sub)transaction that began the load */
	char	   *provider;
	Datum	   *lines;
	int			nlines;
	Size		bytes;
	int64		logins;
	int64		audit_events;
	int64		rejected;
	int64		duplicates;
	bool		storing;		/* inside store_batch() */
} PendingImport;

static PendingImport *pending = NULL;
static bool callbacks_registered = false;

static void
drop_pending(void)
{
	if (pending != NULL)
	{
		MemoryContext cxt = pending->cxt;

		pending = NULL;
		MemoryContextDelete(cxt);
	}
}

/* At the end of the transaction its memory goes, and with it the lines. */
static void
import_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			pending = NULL;		/* freed with TopTransactionContext */
			break;
		default:
			break;
	}
}

/*
 * A subtransaction that aborts while a batch is stored is
 * ato.import_batch() splitting it; any other abort undoes the statement
 * that kept the lines, if it ran in that subtransaction or below it.
 */
static void
import_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB || pending == NULL || pending->storing)
		return;
	if (pending->subxid >= mySubid)
		drop_pending();
}

static PendingImport *
begin_pending(Oid view, const char *provider)
{
	MemoryContext cxt;
	PendingImport *p;

	if (!callbacks_registered)
	{
		RegisterXactCallback(import_xact_callback, NULL);
		RegisterSubXactCallback(import_subxact_callback, NULL);
		callbacks_registered = true;
	}
	cxt = AllocSetContextCreate(TopTransactionContext, "ato import", ALLOCSET_DEFAULT_SIZES);
	p = MemoryContextAllocZero(cxt, sizeof(PendingImport));
	p->cxt = cxt;
	p->lines_cxt = AllocSetContextCreate(cxt, "ato import lines", ALLOCSET_DEFAULT_SIZES);
	p->view = view;
	p->subxid = GetCurrentSubTransactionId();
	p->provider = MemoryContextStrdup(cxt, provider);
	p->lines = MemoryContextAlloc(cxt, IMPORT_BATCH_LINES * sizeof(Datum));
	return p;
}

/* Store the lines kept: one call of ato.import_batch(provider, NULL, lines). */
static void
store_batch(PendingImport *p)
{
	Oid			argtypes[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];
	ArrayType  *lines;
	int			save_nestlevel;
	int			ret;
	bool		isnull;

	if (p->nlines == 0)
		return;
	lines = construct_array(p->lines, p->nlines, TEXTOID, -1, false, TYPALIGN_INT);
	values[0] = CStringGetTextDatum(p->provider);
	values[1] = PointerGetDatum(lines);

	p->storing = true;
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		save_nestlevel = NewGUCNestLevel();
		(void) set_config_option("search_path", ATO_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		ret = SPI_execute_with_args("SELECT logins, audit_events, rejected, duplicates FROM ato.import_batch($1, NULL, $2)",
									2, argtypes, values, NULL, false, 1);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "ato.import_batch() returned no row");
		p->logins += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		p->audit_events += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		p->rejected += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		p->duplicates += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
		AtEOXact_GUC(false, save_nestlevel);
		SPI_finish();
	}
	PG_CATCH();
	{
		p->storing = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	p->storing = false;

	MemoryContextReset(p->lines_cxt);
	p->nlines = 0;
	p->bytes = 0;
}

static const char *
import_provider(TriggerData *trigdata, const char *function)
{
	Trigger    *trigger = trigdata->tg_trigger;

	if (trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s takes one trigger argument: the provider", function),
				 errhint("The import views are created by the extension: ato.okta_import, ato.auth0_import, ato.entra_import.")));
	return trigger->tgargs[0];
}

/* A line that is empty or only blanks is no event (a JSON-lines file may end in one). */
static bool
blank_line(text *line)
{
	const char *p = VARDATA_ANY(line);
	const char *end = p + VARSIZE_ANY_EXHDR(line);

	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return false;
	return true;
}

PG_FUNCTION_INFO_V1(ato_import_line);

/* INSTEAD OF INSERT row trigger of the import views: keep the line. */
Datum
ato_import_line(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *provider;
	Oid			view;
	Datum		value;
	bool		isnull;
	text	   *line;
	MemoryContext old;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_INSTEAD(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ato.import_line() must fire INSTEAD OF INSERT FOR EACH ROW"),
				 errhint("It is the row trigger of the import views; it cannot be called directly.")));
	provider = import_provider(trigdata, "ato.import_line()");
	view = RelationGetRelid(trigdata->tg_relation);

	if (pending != NULL && pending->storing)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot load an import view while an import is storing its events"),
				 errhint("Load the import views from a statement of their own, not from a trigger on the event tables.")));
	if (pending != NULL && pending->view != view)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot load two import views in one statement"),
				 errhint("Load each provider's events with a statement of its own.")));
	if (pending == NULL)
		pending = begin_pending(view, provider);

	value = heap_getattr(trigdata->tg_trigtuple, 1, RelationGetDescr(trigdata->tg_relation), &isnull);
	if (!isnull)
	{
		line = DatumGetTextPP(value);
		if (!blank_line(line))
		{
			old = MemoryContextSwitchTo(pending->lines_cxt);
			pending->lines[pending->nlines++] = PointerGetDatum(
				cstring_to_text_with_len(VARDATA_ANY(line), VARSIZE_ANY_EXHDR(line)));
			MemoryContextSwitchTo(old);
			pending->bytes += VARSIZE_ANY_EXHDR(line);
			if (pending->nlines >= IMPORT_BATCH_LINES || pending->bytes >= IMPORT_BATCH_BYTES)
				store_batch(pending);
		}
	}
	return PointerGetDatum(trigdata->tg_trigtuple);
}

PG_FUNCTION_INFO_V1(ato_import_lines_end);

/* AFTER INSERT statement trigger of the import views: store the rest and say what was stored. */
Datum
ato_import_lines_end(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	PendingImport *p;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ato.import_lines_end() must fire AFTER INSERT FOR EACH STATEMENT"),
				 errhint("It is the statement trigger of the import views; it cannot be called directly.")));
	(void) import_provider(trigdata, "ato.import_lines_end()");

	p = pending;
	if (p == NULL || p->view != RelationGetRelid(trigdata->tg_relation) || p->storing)
		return PointerGetDatum(NULL);
	store_batch(p);
	ereport(NOTICE,
			(errmsg("imported " INT64_FORMAT " logins and " INT64_FORMAT " audit events from %s; " INT64_FORMAT " events rejected, " INT64_FORMAT " already stored",
					p->logins, p->audit_events, p->provider, p->rejected, p->duplicates),
			 p->rejected > 0 ?
			 errhint("The rejected events are kept, with their reasons, in ato.import_rejections.") : 0));
	drop_pending();
	return PointerGetDatum(NULL);
}
