/*
 * geoip.h
 *     GeoIP lookups over MaxMind DB files (libmaxminddb), as used by event
 *     enrichment and by the ato.geoip*() SQL functions.  See src/geoip.c.
 */
#ifndef ATO_GEOIP_H
#define ATO_GEOIP_H

#include <maxminddb.h>

#include "lib/stringinfo.h"
#include "utils/inet.h"

/* What the configured databases know about one address. */
typedef struct GeoAnswer
{
	bool		found;			/* some database has a record for it */
	char		country_code[3];	/* ISO 3166 alpha-2, "" when unknown */
	bool		has_location;
	double		latitude;
	double		longitude;
	bool		has_asn;
	int64		asn;
	char	   *as_org;			/* palloc'd, NULL when unknown */
	char	   *city;			/* palloc'd, NULL when unknown */
	int			network_bits;	/* prefix length of the matched network, -1 if none */
	char	   *details_json;	/* whole records as JSON text, when asked for */
} GeoAnswer;

/*
 * How a lookup treats an unusable database or a failed lookup:
 * GEO_FOR_ENRICHMENT stores the event without enrichment and warns once per
 * backend and condition; GEO_FOR_CALLER raises an ERROR with a hint.
 */
typedef enum GeoUse
{
	GEO_FOR_ENRICHMENT,
	GEO_FOR_CALLER
} GeoUse;

extern void geo_lookup(const inet *addr, GeoUse use, bool want_details,
					   GeoAnswer *answer);
extern bool geo_lookup_country(const inet *addr, GeoUse use, char *country_code);

/* src/geoip_json.c: a MaxMind DB record as JSON text */
extern int	geo_entry_to_json(MMDB_entry_s *entry, StringInfo out);

#endif							/* ATO_GEOIP_H */
