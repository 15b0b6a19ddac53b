/*
 * geoip.h
 *     GeoIP lookups over MaxMind DB files (libmaxminddb), as used by event
 *     enrichment and by the ato.geoip*() SQL functions.  See src/geoip.c,
 *     src/geoip_load.c and src/geoip_json.c.
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

/* Identity of a file on disk: what tells a changed file from the old one. */
typedef struct GeoFileId
{
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	int64		mtime_ns;
} GeoFileId;

/* Why src/geoip_load.c did not load a file. */
typedef struct GeoLoadFailure
{
	int			sqlstate;
	bool		transient;		/* the file changed while read: try again later */
	char		reason[200];
} GeoLoadFailure;

/* src/geoip_load.c: a verified private copy of a MaxMind DB file */
struct stat;
extern MMDB_s *geo_load(const char *path, GeoFileId *id, GeoLoadFailure *failure);
extern void geo_unload(MMDB_s *mmdb);
extern void geo_file_id(const struct stat *st, GeoFileId *id);
extern bool geo_same_file(const GeoFileId *a, const GeoFileId *b);
extern int	geo_sqlstate_for_errno(int err);

/* src/geoip_json.c: a MaxMind DB record as JSON text */
extern int	geo_entry_to_json(MMDB_entry_s *entry, StringInfo out);

#endif							/* ATO_GEOIP_H */
