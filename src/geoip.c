/*
 * geoip.c
 *     GeoIP for ato_response: the per-backend MaxMind DB handles, their
 *     reload when a file is replaced or a setting changes, the lookups used
 *     by event enrichment, and the SQL functions ato.geoip(),
 *     ato.geoip_country(), ato.geoip_status() and ato.geoip_coverage() (the
 *     import's question of what GeoIP knows of an address).
 *
 * Each backend loads each configured database lazily, the first time it
 * needs it; the postmaster never does.  Loading (src/geoip_load.c) reads the
 * file into a sealed private copy and verifies the copy whole, so nothing
 * done to the file afterwards (truncated, rewritten in place, deleted) can
 * reach a lookup.  Before the first lookup of every statement the file is
 * stat()ed: a changed path, inode, size or mtime makes the backend load the
 * new file and, only once it is verified, drop the old copy.  A file that is
 * refused (missing, unreadable, empty, corrupt) is not retried until it
 * changes, and the last good copy stays in use for as long as the setting
 * names the same path; ato.geoip_status() shows the copy in use and the
 * last file refused, with the reason.
 *
 * Both record layouts are read: MaxMind's GeoIP2/GeoLite2 one
 * (country.iso_code, location.latitude, autonomous_system_number, ...) and
 * the flat one of the bundled ip-location-db file (country_code).
 */
#include "postgres.h"

#include <math.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ato_response.h"
#include "compat.h"
#include "geoip.h"

/* One configured database, as this backend sees it. */
typedef struct GeoDatabase
{
	const char *label;			/* "geoip" or "asn", as ato.geoip_status() says */
	const char *guc_name;
	char	  **configured_path;	/* the GUC variable */

	MMDB_s	   *handle;			/* from geo_load(), NULL when nothing is loaded */
	GeoFileId	open_id;		/* the file the copy was read from */
	TimestampTz opened_at;
	double		load_ms;		/* reading and verifying it took */

	char		path[MAXPGPATH];	/* the path handle and problem refer to */
	bool		failed_id_valid;
	GeoFileId	failed_id;		/* a file that was refused: not retried */

	TimestampTz refused_at;		/* the last file refused, 0 if none */
	char		refused_reason[200];
	off_t		refused_size;

	char		problem[256];	/* "" when healthy */
	int			problem_sqlstate;
	bool		problem_warned;

	char		lookup_error[128];	/* last failed lookup in the open file */
	bool		lookup_error_warned;

	TimestampTz checked_statement;	/* statement and transaction starts of */
	TimestampTz checked_transaction;	/* the last freshness check */

	uint64		lookups;
	uint64		misses;
	uint64		errors;
} GeoDatabase;

static GeoDatabase geo_location_db = {
	"geoip", "ato_response.geoip_database", &ato_geoip_database_path
};
static GeoDatabase geo_asn_db = {
	"asn", "ato_response.asn_database", &ato_asn_database_path
};

/* Field paths, most specific layout first. */
static const char *const path_country_iso[] = {"country", "iso_code", NULL};
static const char *const path_country_flat[] = {"country_code", NULL};
static const char *const path_registered_country[] = {"registered_country", "iso_code", NULL};
static const char *const path_latitude[] = {"location", "latitude", NULL};
static const char *const path_latitude_flat[] = {"latitude", NULL};
static const char *const path_longitude[] = {"location", "longitude", NULL};
static const char *const path_longitude_flat[] = {"longitude", NULL};
static const char *const path_asn[] = {"autonomous_system_number", NULL};
static const char *const path_as_org[] = {"autonomous_system_organization", NULL};
static const char *const path_city_en[] = {"city", "names", "en", NULL};
static const char *const path_city_flat[] = {"city", NULL};

static const char *const *const country_paths[] = {
	path_country_iso, path_country_flat, path_registered_country, NULL
};
static const char *const *const latitude_paths[] = {path_latitude, path_latitude_flat, NULL};
static const char *const *const longitude_paths[] = {path_longitude, path_longitude_flat, NULL};
static const char *const *const asn_paths[] = {path_asn, NULL};
static const char *const *const as_org_paths[] = {path_as_org, NULL};
static const char *const *const city_paths[] = {path_city_en, path_city_flat, NULL};


/* ---------------------------------------------------------------------
 * Opening, reloading and reporting on the databases
 * ---------------------------------------------------------------------
 */

static void
geo_set_problem(GeoDatabase *db, int sqlstate, const char *fmt,...)
pg_attribute_printf(3, 4);

static void
geo_set_problem(GeoDatabase *db, int sqlstate, const char *fmt,...)
{
	char		text[sizeof(db->problem)];
	va_list		args;

	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);

	/* a new condition deserves a new warning */
	if (strcmp(text, db->problem) != 0)
		db->problem_warned = false;
	strlcpy(db->problem, text, sizeof(db->problem));
	db->problem_sqlstate = sqlstate;
}

static void
geo_clear_problem(GeoDatabase *db)
{
	db->problem[0] = '\0';
	db->problem_sqlstate = 0;
	db->problem_warned = false;
}

static void
geo_close(GeoDatabase *db)
{
	if (db->handle != NULL)
	{
		geo_unload(db->handle);
		db->handle = NULL;
	}
}

/*
 * Load the file at db->path (whose stat() identity is *id) into a verified
 * private copy; swap it in only on success, else keep what there was and
 * remember why the file was refused.
 */
static void
geo_open(GeoDatabase *db, const GeoFileId *id)
{
	TimestampTz started = GetCurrentTimestamp();
	GeoFileId	loaded_id;
	GeoLoadFailure failure;
	MMDB_s	   *fresh;

	fresh = geo_load(db->path, &loaded_id, &failure);
	if (fresh == NULL)
	{
		const char *still = db->handle ? "; still using the copy opened before" : "";

		/* a file caught changing is tried again; a bad one once it changes */
		if (!failure.transient)
		{
			db->failed_id = *id;
			db->failed_id_valid = true;
		}
		db->refused_at = GetCurrentTimestamp();
		db->refused_size = loaded_id.size ? loaded_id.size : id->size;
		strlcpy(db->refused_reason, failure.reason, sizeof(db->refused_reason));
		geo_set_problem(db, failure.sqlstate, "%s%s", failure.reason, still);
		return;
	}

	geo_close(db);
	db->handle = fresh;
	db->open_id = loaded_id;
	db->opened_at = GetCurrentTimestamp();
	db->load_ms = (double) (db->opened_at - started) / 1000.0;
	db->failed_id_valid = false;
	db->lookup_error[0] = '\0';
	db->lookup_error_warned = false;
	geo_clear_problem(db);
}

/*
 * Make db reflect its setting and the file on disk.  Cheap after the first
 * call of a statement: the check runs once per statement.
 */
static void
geo_refresh(GeoDatabase *db)
{
	TimestampTz statement_start = GetCurrentStatementStartTimestamp();
	TimestampTz transaction_start = GetCurrentTransactionStartTimestamp();
	const char *setting = *db->configured_path ? *db->configured_path : "";
	struct stat st;
	GeoFileId	id;

	if (db->checked_statement == statement_start &&
		db->checked_transaction == transaction_start &&
		strcmp(setting, db->path) == 0)
		return;
	db->checked_statement = statement_start;
	db->checked_transaction = transaction_start;

	if (strcmp(setting, db->path) != 0)
	{
		/* the setting now names another file (or none) */
		geo_close(db);
		geo_clear_problem(db);
		db->failed_id_valid = false;
		db->refused_at = 0;
		db->refused_reason[0] = '\0';
		db->lookup_error[0] = '\0';
		db->lookup_error_warned = false;
		if (strlen(setting) >= sizeof(db->path))
		{
			db->path[0] = '\0';
			geo_set_problem(db, ERRCODE_NAME_TOO_LONG, "the path is too long");
			return;
		}
		strlcpy(db->path, setting, sizeof(db->path));
	}

	if (db->path[0] == '\0')
		return;					/* turned off: not a problem */

	if (stat(db->path, &st) != 0)
	{
		int			err = errno;

		if (db->handle != NULL)
			geo_set_problem(db, geo_sqlstate_for_errno(err),
							"the file is gone (%s); still using the copy opened before",
							strerror(err));
		else
			geo_set_problem(db, geo_sqlstate_for_errno(err),
							"could not open the file: %s", strerror(err));
		return;
	}

	geo_file_id(&st, &id);
	if (!S_ISREG(st.st_mode))
	{
		/* never open a directory, device or FIFO (opening a FIFO blocks) */
		if (!db->failed_id_valid || !geo_same_file(&id, &db->failed_id))
		{
			db->failed_id = id;
			db->failed_id_valid = true;
			db->refused_at = GetCurrentTimestamp();
			db->refused_size = 0;
			strlcpy(db->refused_reason, "not a regular file", sizeof(db->refused_reason));
		}
		geo_set_problem(db, ERRCODE_WRONG_OBJECT_TYPE, "not a regular file%s",
						db->handle ? "; still using the copy opened before" : "");
		return;
	}

	if (db->handle != NULL && geo_same_file(&id, &db->open_id))
	{
		geo_clear_problem(db);
		return;
	}
	if (db->failed_id_valid && geo_same_file(&id, &db->failed_id))
		return;					/* known bad, unchanged: keep the problem */

	geo_open(db, &id);
}

/* The condition of db for a caller that needs it to answer. */
static void
geo_raise_unusable(GeoDatabase *db)
{
	if (db->path[0] == '\0' && db->problem[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no GeoIP database is configured"),
				 errhint("Set %s to the path of a MaxMind DB file.", db->guc_name)));
	ereport(ERROR,
			(errcode(db->problem_sqlstate),
			 errmsg("GeoIP database \"%s\" is not usable: %s", db->path, db->problem),
			 errhint("Point %s at a readable MaxMind DB file (the bundled one is installed by \"make geoip install\"); ato.geoip_status() shows what is loaded.",
					 db->guc_name)));
}

/* Once per condition and backend, say that events go unenriched. */
static void
geo_warn_unenriched(GeoDatabase *db)
{
	if (db->problem_warned || db->problem[0] == '\0')
		return;
	db->problem_warned = true;
	ereport(WARNING,
			(errcode(db->problem_sqlstate),
			 errmsg("GeoIP database \"%s\" is not usable: %s", db->path, db->problem),
			 errdetail("Events are stored, without the fields this database would add."),
			 errhint("Point %s at a readable MaxMind DB file; ato.geoip_status() shows the condition.",
					 db->guc_name)));
}

/*
 * The database ready for a lookup, or NULL when it is turned off or
 * unusable (after raising or warning, as use says).
 */
static MMDB_s *
geo_ready(GeoDatabase *db, GeoUse use)
{
	geo_refresh(db);
	if (db->handle != NULL)
	{
		/* a stale but working copy answers; warn about it when enriching */
		if (use == GEO_FOR_ENRICHMENT)
			geo_warn_unenriched(db);
		return db->handle;
	}
	if (use == GEO_FOR_CALLER)
		geo_raise_unusable(db);
	geo_warn_unenriched(db);
	return NULL;
}

/* A lookup or decoding failure inside an open database. */
static void
geo_lookup_failed(GeoDatabase *db, GeoUse use, int mmdb_status)
{
	db->errors++;
	strlcpy(db->lookup_error, MMDB_strerror(mmdb_status), sizeof(db->lookup_error));
	if (use == GEO_FOR_CALLER)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("GeoIP lookup in \"%s\" failed: %s", db->path, MMDB_strerror(mmdb_status)),
				 errhint("The file is damaged; replace it with a good copy by renaming it over \"%s\".",
						 db->path)));
	if (!db->lookup_error_warned)
	{
		db->lookup_error_warned = true;
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("GeoIP lookup in \"%s\" failed: %s", db->path, MMDB_strerror(mmdb_status)),
				 errdetail("Events whose lookup fails are stored without the fields this database would add."),
				 errhint("Replace the file with a good copy by renaming it over \"%s\".", db->path)));
	}
}


/* ---------------------------------------------------------------------
 * Lookups
 * ---------------------------------------------------------------------
 */

/*
 * True for an IPv4-mapped IPv6 address (::ffff:a.b.c.d), which dual-stack
 * servers report for IPv4 clients: it is looked up as the IPv4 address.
 */
static bool
geo_is_v4_mapped(const inet *addr)
{
	static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return ip_family(addr) == PGSQL_AF_INET6 &&
		memcmp(ip_addr(addr), prefix, sizeof(prefix)) == 0;
}

/*
 * Look addr up in db.  Returns true with *result filled when it has a
 * record; false on a miss, an unusable database or a failed lookup.
 */
static bool
geo_find(GeoDatabase *db, const inet *addr, GeoUse use, MMDB_lookup_result_s *result)
{
	MMDB_s	   *mmdb = geo_ready(db, use);
	struct sockaddr_storage ss;
	int			mmdb_error = MMDB_SUCCESS;

	if (mmdb == NULL)
		return false;

	memset(&ss, 0, sizeof(ss));
	if (ip_family(addr) == PGSQL_AF_INET || geo_is_v4_mapped(addr))
	{
		struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ip_addr(addr) + (ip_family(addr) == PGSQL_AF_INET ? 0 : 12), 4);
	}
	else
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ip_addr(addr), 16);
	}

	db->lookups++;
	*result = MMDB_lookup_sockaddr(mmdb, (const struct sockaddr *) &ss, &mmdb_error);
	if (mmdb_error == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
	{
		db->misses++;
		return false;			/* an IPv4-only database knows no IPv6 address */
	}
	if (mmdb_error != MMDB_SUCCESS)
	{
		geo_lookup_failed(db, use, mmdb_error);
		return false;
	}
	if (!result->found_entry)
	{
		db->misses++;
		return false;
	}
	return true;
}

/*
 * The value at the first of paths that holds data, or false.  Paths that do
 * not match a record's shape are normal (layouts differ); a decoding error is
 * damage and is reported like a failed lookup.
 */
static bool
geo_value(GeoDatabase *db, GeoUse use, MMDB_entry_s *entry,
		  const char *const *const *paths, MMDB_entry_data_s *value)
{
	for (; *paths != NULL; paths++)
	{
		int			status = MMDB_aget_value(entry, value, *paths);

		if (status == MMDB_SUCCESS)
		{
			if (value->has_data)
				return true;
		}
		else if (status != MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR &&
				 status != MMDB_INVALID_LOOKUP_PATH_ERROR)
		{
			geo_lookup_failed(db, use, status);
			return false;
		}
	}
	return false;
}

/*
 * A MaxMind string as a palloc'd string in the database encoding, or NULL
 * when it is not valid UTF-8 or cannot be represented here.
 */
static char *
geo_text(const char *bytes, uint32 length)
{
	bool		ascii = true;
	uint32		i;

	if (!pg_verify_mbstr(PG_UTF8, bytes, length, true))
		return NULL;
	for (i = 0; i < length; i++)
		if ((unsigned char) bytes[i] >= 0x80)
			ascii = false;
	if (!ascii && GetDatabaseEncoding() != PG_UTF8 &&
		GetDatabaseEncoding() != PG_SQL_ASCII)
		return NULL;
	return pnstrdup(bytes, length);
}

static bool
geo_country(GeoDatabase *db, GeoUse use, MMDB_entry_s *entry, char *country_code)
{
	MMDB_entry_data_s value;

	if (!geo_value(db, use, entry, country_paths, &value) ||
		value.type != MMDB_DATA_TYPE_UTF8_STRING || value.data_size != 2)
		return false;
	if (!isalpha((unsigned char) value.utf8_string[0]) ||
		!isalpha((unsigned char) value.utf8_string[1]))
		return false;
	country_code[0] = pg_ascii_toupper(value.utf8_string[0]);
	country_code[1] = pg_ascii_toupper(value.utf8_string[1]);
	country_code[2] = '\0';
	return true;
}

static bool
geo_double(GeoDatabase *db, GeoUse use, MMDB_entry_s *entry,
		   const char *const *const *paths, double limit, double *out)
{
	MMDB_entry_data_s value;
	double		number;

	if (!geo_value(db, use, entry, paths, &value))
		return false;
	if (value.type == MMDB_DATA_TYPE_DOUBLE)
		number = value.double_value;
	else if (value.type == MMDB_DATA_TYPE_FLOAT)
		number = value.float_value;
	else
		return false;
	if (isnan(number) || number < -limit || number > limit)
		return false;
	*out = number;
	return true;
}

static bool
geo_unsigned(GeoDatabase *db, GeoUse use, MMDB_entry_s *entry,
			 const char *const *const *paths, int64 *out)
{
	MMDB_entry_data_s value;

	if (!geo_value(db, use, entry, paths, &value))
		return false;
	switch (value.type)
	{
		case MMDB_DATA_TYPE_UINT16:
			*out = value.uint16;
			return true;
		case MMDB_DATA_TYPE_UINT32:
			*out = value.uint32;
			return true;
		case MMDB_DATA_TYPE_INT32:
			*out = value.int32;
			return *out >= 0;
		case MMDB_DATA_TYPE_UINT64:
			*out = (int64) value.uint64;
			return value.uint64 <= PG_INT64_MAX;
		default:
			return false;
	}
}

static char *
geo_string(GeoDatabase *db, GeoUse use, MMDB_entry_s *entry,
		   const char *const *const *paths)
{
	MMDB_entry_data_s value;

	if (!geo_value(db, use, entry, paths, &value) ||
		value.type != MMDB_DATA_TYPE_UTF8_STRING || value.data_size == 0)
		return NULL;
	return geo_text(value.utf8_string, value.data_size);
}

/*
 * The prefix length of a match, counted in the address's own family.  An
 * IPv4 lookup reports it in the database's tree: up to 32 in an IPv4 tree,
 * 96 more in an IPv6 one.
 */
static int
geo_network_bits(const inet *addr, const MMDB_lookup_result_s *result)
{
	int			bits = result->netmask;

	if (ip_family(addr) == PGSQL_AF_INET && bits > 32)
		bits -= 96;
	else if (geo_is_v4_mapped(addr) && bits <= 32)
		bits += 96;
	return Max(bits, 0);
}

static void
geo_append_details(GeoDatabase *db, GeoUse use, MMDB_lookup_result_s *result,
				   StringInfo json, bool *first)
{
	int			status;

	appendStringInfo(json, "%s\"%s\": ", *first ? "" : ", ", db->label);
	*first = false;
	status = geo_entry_to_json(&result->entry, json);
	if (status != MMDB_SUCCESS)
		geo_lookup_failed(db, use, status);
}

void
geo_lookup(const inet *addr, GeoUse use, bool want_details, GeoAnswer *answer)
{
	MMDB_lookup_result_s location;
	MMDB_lookup_result_s asn;
	bool		in_location;
	bool		in_asn = false;
	StringInfoData json;
	bool		first = true;

	memset(answer, 0, sizeof(*answer));
	answer->network_bits = -1;

	in_location = geo_find(&geo_location_db, addr, use, &location);
	if (ato_asn_database_path != NULL && ato_asn_database_path[0] != '\0')
		in_asn = geo_find(&geo_asn_db, addr, use, &asn);
	answer->found = in_location || in_asn;

	if (in_location)
	{
		MMDB_entry_s *entry = &location.entry;

		geo_country(&geo_location_db, use, entry, answer->country_code);
		answer->has_location =
			geo_double(&geo_location_db, use, entry, latitude_paths, 90.0, &answer->latitude) &&
			geo_double(&geo_location_db, use, entry, longitude_paths, 180.0, &answer->longitude);
		answer->has_asn = geo_unsigned(&geo_location_db, use, entry, asn_paths, &answer->asn);
		answer->as_org = geo_string(&geo_location_db, use, entry, as_org_paths);
		if (want_details)
			answer->city = geo_string(&geo_location_db, use, entry, city_paths);
		answer->network_bits = geo_network_bits(addr, &location);
	}
	if (in_asn)
	{
		/* the ASN database is the authority on ASN fields */
		MMDB_entry_s *entry = &asn.entry;
		int64		number;
		char	   *org;

		if (geo_unsigned(&geo_asn_db, use, entry, asn_paths, &number))
		{
			answer->asn = number;
			answer->has_asn = true;
		}
		if ((org = geo_string(&geo_asn_db, use, entry, as_org_paths)) != NULL)
			answer->as_org = org;
		if (answer->network_bits < 0)
			answer->network_bits = geo_network_bits(addr, &asn);
	}

	if (want_details && answer->found)
	{
		initStringInfo(&json);
		appendStringInfoChar(&json, '{');
		if (in_location)
			geo_append_details(&geo_location_db, use, &location, &json, &first);
		if (in_asn)
			geo_append_details(&geo_asn_db, use, &asn, &json, &first);
		appendStringInfoChar(&json, '}');
		answer->details_json = json.data;
	}
}

bool
geo_lookup_country(const inet *addr, GeoUse use, char *country_code)
{
	MMDB_lookup_result_s result;

	country_code[0] = '\0';
	if (!geo_find(&geo_location_db, addr, use, &result))
		return false;
	return geo_country(&geo_location_db, use, &result.entry, country_code);
}


/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(ato_geoip_country);
PG_FUNCTION_INFO_V1(ato_geoip);
PG_FUNCTION_INFO_V1(ato_geoip_status);
PG_FUNCTION_INFO_V1(ato_geoip_coverage);

/* ato.geoip_country(inet) returns text: the ISO country code, or NULL */
Datum
ato_geoip_country(PG_FUNCTION_ARGS)
{
	inet	   *addr = PG_GETARG_INET_PP(0);
	char		country_code[3];

	if (!geo_lookup_country(addr, GEO_FOR_CALLER, country_code))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text_with_len(country_code, 2));
}

/*
 * ato.geoip_coverage(inet) returns integer (declared with the import,
 * install/sections/11_import.sql): what the configured GeoIP databases know
 * of an address, so that a provider's own geography fills only what GeoIP
 * has no answer for, never in place of it.  It never raises for an
 * unusable database (that is "no answer", as enrichment treats it).
 */
#define GEO_COVERS_COUNTRY	1
#define GEO_COVERS_LOCATION	2

Datum
ato_geoip_coverage(PG_FUNCTION_ARGS)
{
	GeoAnswer	answer;
	int32		covered = 0;

	geo_lookup(PG_GETARG_INET_PP(0), GEO_FOR_ENRICHMENT, false, &answer);
	if (answer.found && answer.country_code[0] != '\0')
		covered |= GEO_COVERS_COUNTRY;
	if (answer.found && answer.has_location)
		covered |= GEO_COVERS_LOCATION;
	PG_RETURN_INT32(covered);
}

/* ato.geoip(inet) returns ato.geoip_result: every field found, or NULL */
Datum
ato_geoip(PG_FUNCTION_ARGS)
{
	inet	   *addr = PG_GETARG_INET_PP(0);
	GeoAnswer	answer;
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	geo_lookup(addr, GEO_FOR_CALLER, true, &answer);
	if (!answer.found)
		PG_RETURN_NULL();

	memset(nulls, true, sizeof(nulls));
	if (answer.country_code[0] != '\0')
	{
		values[0] = CStringGetTextDatum(answer.country_code);
		nulls[0] = false;
	}
	if (answer.city != NULL)
	{
		values[1] = CStringGetTextDatum(answer.city);
		nulls[1] = false;
	}
	if (answer.has_location)
	{
		values[2] = Float8GetDatum(answer.latitude);
		values[3] = Float8GetDatum(answer.longitude);
		nulls[2] = nulls[3] = false;
	}
	if (answer.has_asn)
	{
		values[4] = Int64GetDatum(answer.asn);
		nulls[4] = false;
	}
	if (answer.as_org != NULL)
	{
		values[5] = CStringGetTextDatum(answer.as_org);
		nulls[5] = false;
	}
	if (answer.network_bits >= 0)
	{
		values[6] = InetPGetDatum(cidr_set_masklen_internal(addr, answer.network_bits));
		nulls[6] = false;
	}
	if (answer.details_json != NULL)
	{
		values[7] = DirectFunctionCall1(jsonb_in, CStringGetDatum(answer.details_json));
		nulls[7] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

static void
geo_status_row(GeoDatabase *db, Tuplestorestate *store, TupleDesc tupdesc)
{
	Datum		values[19];
	bool		nulls[19];
	const char *setting = *db->configured_path ? *db->configured_path : "";

	geo_refresh(db);
	memset(nulls, true, sizeof(nulls));

	values[0] = CStringGetTextDatum(db->label);
	values[1] = CStringGetTextDatum(db->guc_name);
	nulls[0] = nulls[1] = false;
	if (setting[0] != '\0')
	{
		values[2] = CStringGetTextDatum(setting);
		nulls[2] = false;
	}
	values[3] = BoolGetDatum(db->handle != NULL);
	nulls[3] = false;
	if (db->handle != NULL)
	{
		MMDB_metadata_s *meta = &db->handle->metadata;

		if (meta->database_type != NULL)
		{
			values[4] = CStringGetTextDatum(meta->database_type);
			nulls[4] = false;
		}
		if (meta->build_epoch <= (uint64) PG_INT32_MAX * 100)
		{
			values[5] = TimestampTzGetDatum(time_t_to_timestamptz((pg_time_t) meta->build_epoch));
			nulls[5] = false;
		}
		values[6] = Int32GetDatum((int32) meta->ip_version);
		values[7] = Int64GetDatum((int64) meta->node_count);
		values[8] = TimestampTzGetDatum(db->opened_at);
		values[9] = Int64GetDatum((int64) db->open_id.size);
		values[10] = TimestampTzGetDatum(time_t_to_timestamptz((pg_time_t) (db->open_id.mtime_ns / 1000000000)) +
										 (db->open_id.mtime_ns % 1000000000) / 1000);
		values[11] = Float8GetDatum(db->load_ms);
		nulls[6] = nulls[7] = nulls[8] = nulls[9] = nulls[10] = nulls[11] = false;
	}
	if (db->refused_at != 0)
	{
		values[12] = TimestampTzGetDatum(db->refused_at);
		values[13] = Int64GetDatum((int64) db->refused_size);
		values[14] = CStringGetTextDatum(db->refused_reason);
		nulls[12] = nulls[13] = nulls[14] = false;
	}
	if (db->problem[0] != '\0')
	{
		values[15] = CStringGetTextDatum(db->problem);
		nulls[15] = false;
	}
	else if (db->lookup_error[0] != '\0')
	{
		values[15] = CStringGetTextDatum(psprintf("lookups fail: %s", db->lookup_error));
		nulls[15] = false;
	}
	values[16] = Int64GetDatum((int64) db->lookups);
	values[17] = Int64GetDatum((int64) db->misses);
	values[18] = Int64GetDatum((int64) db->errors);
	nulls[16] = nulls[17] = nulls[18] = false;

	tuplestore_putvalues(store, tupdesc, values, nulls);
}

/* ato.geoip_status(): one row per configured database, as this backend sees it */
Datum
ato_geoip_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	ato_init_materialized_srf(fcinfo);
	geo_status_row(&geo_location_db, rsinfo->setResult, rsinfo->setDesc);
	geo_status_row(&geo_asn_db, rsinfo->setResult, rsinfo->setDesc);
	return (Datum) 0;
}
