/*
 * import.c
 *     The C side of importing identity-provider logs (the SQL side, one
 *     mapping function per provider and ato.import_events(), is in
 *     install/sections/11_import.sql):
 *
 *   - ato.geoip_coverage(inet): what the configured GeoIP databases know
 *     of an address, so that a provider's own geography fills only what
 *     GeoIP has no answer for, never in place of it.  It never raises for
 *     an unusable database (that is "no answer", as enrichment treats it).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/inet.h"

#include "geoip.h"

/* bits of ato.geoip_coverage()'s answer */
#define GEO_COVERS_COUNTRY	1
#define GEO_COVERS_LOCATION	2

PG_FUNCTION_INFO_V1(ato_geoip_coverage);

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
