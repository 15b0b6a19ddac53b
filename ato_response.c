/*
 * ato_response.c
 *     Module entry of the ato_response extension: the module magic, _PG_init
 *     and the definition of every setting (GUC), and ato.setting(), through
 *     which the SQL functions read them.  The work itself lives in
 *     src/: GeoIP lookups in geoip.c (a record as JSON in geoip_json.c), event
 *     validation and enrichment in ingest.c, the write-time side of the
 *     per-account summaries in summary.c, the detection functions in
 *     detect.c; the response: incidents in revoke.c, the application's
 *     tables they mark in targets.c; the background workers' registration and
 *     the launcher in workers.c, their loops in detection_worker.c and
 *     incident_worker.c.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "ato_response.h"
#include "workers.h"

PG_MODULE_MAGIC;

#if PG_VERSION_NUM < 160000
void		_PG_init(void);
#endif

char	   *ato_geoip_database_path = NULL;
char	   *ato_asn_database_path = NULL;
bool		ato_locate_special_addresses = false;
int			ato_max_user_agent_length = 1024;
int			ato_max_future_skew = 300;
int			ato_revocation_fence_timeout = 10000;
int			ato_revocation_batch_size = 500;
int			ato_inline_marking_limit = 10000;
char	   *ato_revocation_channel = NULL;
char	   *ato_databases = NULL;
int			ato_detection_interval = 60;
int			ato_rule_timeout = 60000;
int			ato_retention = 90 * 24 * 60;
char	   *ato_alert_channel = NULL;
char	   *ato_shard_name = NULL;

/* A NOTIFY channel name: not empty, and short enough to be one. */
static bool
check_notify_channel(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("The channel name must not be empty.");
		return false;
	}
	if (strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errdetail("The channel name must be shorter than %d bytes.", NAMEDATALEN);
		return false;
	}
	return true;
}

/* A shard's name: short enough for every notification that carries it. */
static bool
check_shard_name(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && strlen(*newval) > 200)
	{
		GUC_check_errdetail("A shard's name must be at most 200 bytes.");
		return false;
	}
	return true;
}

/*
 * The bundled country database is installed by "make install" beside the
 * extension's SQL scripts; it is the default so that enrichment works with no
 * configuration.  The GUC machinery keeps a pointer to the boot value, so it
 * must live as long as the process.
 */
static char *
bundled_geoip_database_path(void)
{
	char		sharedir[MAXPGPATH];

	get_share_path(my_exec_path, sharedir);
	return MemoryContextStrdup(TopMemoryContext,
							   psprintf("%s/extension/ato_response/geo-whois-asn-country.mmdb",
										sharedir));
}

void
_PG_init(void)
{
	DefineCustomStringVariable("ato_response.geoip_database",
							   "Path of the MaxMind DB file used to enrich events with a country and location.",
							   "Both the GeoIP2/GeoLite2 layout and the flat country_code layout are read. "
							   "Relative paths are relative to the data directory. An empty string turns enrichment off. "
							   "Replace the file by renaming a new one over it; it is picked up by the next statement.",
							   &ato_geoip_database_path,
							   bundled_geoip_database_path(),
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("ato_response.locate_special_addresses",
							 "Look up special-purpose addresses (private, shared, documentation, ...) in the GeoIP databases too.",
							 "Off: events from them get no GeoIP fields, whatever a public database says. "
							 "On for a database of your own that maps your private networks to your offices.",
							 &ato_locate_special_addresses,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("ato_response.asn_database",
							   "Path of an optional MaxMind DB file with autonomous system numbers and organisations.",
							   "For example GeoLite2-ASN. Empty means the ASN fields come from ato_response.geoip_database when it has them.",
							   &ato_asn_database_path,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("ato_response.max_user_agent_length",
							"User agents longer than this many bytes are cut to it when an event is stored.",
							NULL,
							&ato_max_user_agent_length,
							1024,
							64,
							65536,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ato_response.max_future_skew",
							"Events stored with an occurred_at further than this ahead of the server's clock are refused.",
							"A writer's clock may run a little ahead; a login dated tomorrow would count (and make a country familiar) before it happened. -1 accepts any time (a load of test data dated ahead).",
							&ato_max_future_skew,
							300,
							-1,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("ato_response.shard_name",
							   "Name of this server among the shards behind a PL/Proxy cluster; empty on a single server.",
							   "Written into every notification and outbox row, so that a reader behind the proxy knows which shard it came from.",
							   &ato_shard_name,
							   "",
							   PGC_SUSET,
							   0,
							   check_shard_name, NULL, NULL);

	DefineCustomIntVariable("ato_response.revocation_fence_timeout",
							"How long a revocation waits for the logins of its accounts that are still in their transaction.",
							"It then fails with 55P03, naming how to find them; 0 waits without limit. See src/fence.c.",
							&ato_revocation_fence_timeout,
							10000,
							0,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ato_response.revocation_batch_size",
							"Accounts ato.revoke_incident() marks in one batch (one NOTIFY, and one transaction in the background worker).",
							NULL,
							&ato_revocation_batch_size,
							500,
							1,
							100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ato_response.inline_marking_limit",
							"Incidents with more accounts than this return once contained and have their rows marked by a background worker.",
							"0 sends every incident to the background worker.",
							&ato_inline_marking_limit,
							10000,
							0,
							INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("ato_response.revocation_channel",
							   "NOTIFY channel on which ato.revoke_incident() announces each batch of revoked accounts.",
							   "Payloads are JSON wake-ups without account ids: {\"incident\", \"position\", \"batch\", \"batches\", \"accounts\"}; the accounts are read with ato.revocations_since().",
							   &ato_revocation_channel,
							   "ato_revocations",
							   PGC_SUSET,
							   0,
							   check_notify_channel, NULL, NULL);

	DefineCustomStringVariable("ato_response.databases",
							   "Databases in which the extension's background workers run the detection rules and resume unfinished incidents.",
							   "A comma-separated list; it needs ato_response in shared_preload_libraries.",
							   &ato_databases,
							   "",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("ato_response.detection_interval",
							"Time between two runs of the detection rules by the background worker.",
							NULL,
							&ato_detection_interval,
							60,
							1,
							86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ato_response.rule_timeout",
							"Longest time one detection rule may run in the background worker before it is cut off and reported.",
							"0 lets rules run as long as they take.",
							&ato_rule_timeout,
							60000,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ato_response.retention",
							"Events older than this are dropped, a month partition at a time, by ato.apply_retention().",
							"0 keeps every event.",
							&ato_retention,
							90 * 24 * 60,
							0,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomStringVariable("ato_response.alert_channel",
							   "NOTIFY channel on which the detection rules announce new alerts.",
							   "Payloads are JSON: {\"alert\", \"rule\", \"finding\", \"accounts\"}.",
							   &ato_alert_channel,
							   "ato_alerts",
							   PGC_SUSET,
							   0,
							   check_notify_channel, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
		launcher_register();

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("ato_response");
#else
	EmitWarningsOnPlaceholders("ato_response");
#endif
}

/*
 * ato.setting(name): the value of one of this module's settings.  The SQL
 * functions read their settings through it rather than current_setting():
 * calling it loads the module, and so defines the settings with their
 * defaults, in a session that has not loaded it yet (a pg_cron job when
 * the library is not preloaded).
 */
PG_FUNCTION_INFO_V1(ato_setting);
Datum
ato_setting(PG_FUNCTION_ARGS)
{
	char	   *name;
	const char *value;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("setting name must not be NULL"),
				 errhint("Name one of the ato_response.* settings.")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	/* as current_setting() shows it, with its unit */
	if (strncmp(name, "ato_response.", strlen("ato_response.")) != 0 ||
		(value = GetConfigOptionByName(name, NULL, true)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("\"%s\" is not a setting of ato_response", name),
				 errhint("The settings are listed by SELECT name FROM pg_settings WHERE name LIKE 'ato_response.%%'.")));
	PG_RETURN_TEXT_P(cstring_to_text(value));
}
