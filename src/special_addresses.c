/*
 * special_addresses.c
 *     The addresses of the IANA special-purpose registries (IPv4: RFC 6890
 *     and its updates; IPv6: the same) that are not globally reachable, and
 *     the documentation and benchmarking ranges: private networks, shared
 *     (CGNAT) space, loopback, link-local, documentation, benchmarking,
 *     unique-local, multicast, reserved.  A login from one never gets a
 *     country from GeoIP, whatever the database says (a public database
 *     gives 192.168.0.0/16 or 2001:db8::/32 a country), so an office NAT or
 *     a VPN concentrator is never a new country or a leg of a journey.
 *     Ranges that are special but globally reachable (6to4 and AS112 relays,
 *     NAT64's well-known prefix, Teredo) are looked up as usual.
 */
#include "postgres.h"

#include <sys/socket.h>

#include "fmgr.h"
#include "utils/inet.h"

#include "special_addresses.h"

typedef struct SpecialRange
{
	unsigned char prefix[16];
	int			bits;
} SpecialRange;

static const SpecialRange special_v4[] = {
	{{0, 0, 0, 0}, 8},			/* "this network" */
	{{10, 0, 0, 0}, 8},			/* private */
	{{100, 64, 0, 0}, 10},		/* shared address space (CGNAT) */
	{{127, 0, 0, 0}, 8},		/* loopback */
	{{169, 254, 0, 0}, 16},		/* link-local */
	{{172, 16, 0, 0}, 12},		/* private */
	{{192, 0, 0, 0}, 24},		/* IETF protocol assignments */
	{{192, 0, 2, 0}, 24},		/* documentation (TEST-NET-1) */
	{{192, 168, 0, 0}, 16},		/* private */
	{{198, 18, 0, 0}, 15},		/* benchmarking */
	{{198, 51, 100, 0}, 24},	/* documentation (TEST-NET-2) */
	{{203, 0, 113, 0}, 24},		/* documentation (TEST-NET-3) */
	{{224, 0, 0, 0}, 4},		/* multicast */
	{{240, 0, 0, 0}, 4},		/* reserved, and the limited broadcast */
};

static const SpecialRange special_v6[] = {
	{{0}, 127},					/* :: and ::1, unspecified and loopback */
	{{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48},	/* local-use NAT64 */
	{{0x01, 0x00}, 64},			/* discard-only */
	{{0x20, 0x01, 0x00, 0x02, 0x00, 0x00}, 48},	/* benchmarking */
	{{0x20, 0x01, 0x00, 0x10}, 28},	/* ORCHID (deprecated) */
	{{0x20, 0x01, 0x00, 0x20}, 28},	/* ORCHIDv2 */
	{{0x20, 0x01, 0x0d, 0xb8}, 32},	/* documentation */
	{{0x3f, 0xff}, 20},			/* documentation */
	{{0x5f, 0x00}, 16},			/* segment routing (SRv6) SIDs */
	{{0xfc}, 7},				/* unique-local */
	{{0xfe, 0x80}, 10},			/* link-local */
	{{0xff}, 8},				/* multicast */
};

static bool
in_range(const unsigned char *addr, const SpecialRange *range)
{
	int			whole = range->bits / 8;
	int			rest = range->bits % 8;

	if (memcmp(addr, range->prefix, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((addr[whole] ^ range->prefix[whole]) & (0xff << (8 - rest))) == 0;
}

static bool
in_any(const unsigned char *addr, const SpecialRange *ranges, int n)
{
	for (int i = 0; i < n; i++)
		if (in_range(addr, &ranges[i]))
			return true;
	return false;
}

/* 192.0.0.9 and 192.0.0.10 (PCP and TURN anycast) are globally reachable. */
static bool
special_v4_address(const unsigned char *bytes)
{
	if (bytes[0] == 192 && bytes[1] == 0 && bytes[2] == 0 && (bytes[3] == 9 || bytes[3] == 10))
		return false;
	return in_any(bytes, special_v4, lengthof(special_v4));
}

bool
ato_special_purpose_address(const inet *addr)
{
	const unsigned char *bytes = ip_addr(addr);
	static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (ip_family(addr) == PGSQL_AF_INET)
		return special_v4_address(bytes);
	/* ::ffff:a.b.c.d is looked up as a.b.c.d, and judged as it */
	if (memcmp(bytes, v4_mapped, sizeof(v4_mapped)) == 0)
		return special_v4_address(bytes + 12);
	return in_any(bytes, special_v6, lengthof(special_v6));
}

/* ato.is_special_purpose(inet) RETURNS boolean */
PG_FUNCTION_INFO_V1(ato_is_special_purpose);
Datum
ato_is_special_purpose(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ato_special_purpose_address(PG_GETARG_INET_PP(0)));
}
