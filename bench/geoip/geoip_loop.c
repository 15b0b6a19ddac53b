/*
 * geoip_loop.c -- the physical limit of a country lookup: libmaxminddb
 * called in a tight C loop, with nothing of PostgreSQL around it.
 *
 *   cc -O2 -o geoip_loop geoip_loop.c -lmaxminddb
 *   geoip_loop DATABASE.mmdb ADDRESSES.txt [PASSES]
 *
 * Reads one address per line (IPv4 or IPv6 text) and parses them all into
 * socket addresses first; that is not timed.  Then, PASSES times (default
 * 3), times MMDB_lookup_sockaddr() plus MMDB_get_value(entry,
 * "country_code") and a copy of the two-letter code for every address, and
 * prints one line:
 *
 *   <median seconds of the passes> <hits> <addresses>
 *
 * A hit is what ato.geoip_country() answers non-NULL for: a record whose
 * country_code is a two-letter string.  The database is opened in mmap mode,
 * as the extension opens it.
 */
#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "geoip_loop: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
compare_doubles(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Read and parse every address of path; returns how many. */
static size_t
read_addresses(const char *path, struct sockaddr_storage **out)
{
	FILE	   *file = fopen(path, "r");
	size_t		count = 0;
	size_t		capacity = 1 << 20;
	struct sockaddr_storage *addrs;
	char		line[128];

	if (file == NULL)
		die("cannot open addresses file", path);
	addrs = malloc(capacity * sizeof(*addrs));
	if (addrs == NULL)
		die("out of memory", NULL);

	while (fgets(line, sizeof(line), file) != NULL)
	{
		struct sockaddr_storage *ss;
		size_t		length = strcspn(line, "\r\n");

		line[length] = '\0';
		if (length == 0)
			continue;
		if (count == capacity)
		{
			capacity *= 2;
			addrs = realloc(addrs, capacity * sizeof(*addrs));
			if (addrs == NULL)
				die("out of memory", NULL);
		}
		ss = &addrs[count];
		memset(ss, 0, sizeof(*ss));
		if (strchr(line, ':') != NULL)
		{
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;

			sin6->sin6_family = AF_INET6;
			if (inet_pton(AF_INET6, line, &sin6->sin6_addr) != 1)
				die("not an IPv6 address", line);
		}
		else
		{
			struct sockaddr_in *sin = (struct sockaddr_in *) ss;

			sin->sin_family = AF_INET;
			if (inet_pton(AF_INET, line, &sin->sin_addr) != 1)
				die("not an IPv4 address", line);
		}
		count++;
	}
	if (ferror(file))
		die("cannot read addresses file", path);
	fclose(file);
	*out = addrs;
	return count;
}

/* One timed pass: look every address up; returns the hits. */
static size_t
lookup_all(MMDB_s *mmdb, const struct sockaddr_storage *addrs, size_t count,
		   uint64_t *checksum)
{
	size_t		hits = 0;
	size_t		i;

	for (i = 0; i < count; i++)
	{
		int			mmdb_error = MMDB_SUCCESS;
		MMDB_lookup_result_s result;
		MMDB_entry_data_s value;
		char		code[3];

		result = MMDB_lookup_sockaddr(mmdb, (const struct sockaddr *) &addrs[i], &mmdb_error);
		if (mmdb_error != MMDB_SUCCESS || !result.found_entry)
			continue;
		if (MMDB_get_value(&result.entry, &value, "country_code", NULL) != MMDB_SUCCESS ||
			!value.has_data || value.type != MMDB_DATA_TYPE_UTF8_STRING ||
			value.data_size != 2)
			continue;
		memcpy(code, value.utf8_string, 2);
		code[2] = '\0';
		*checksum += (uint64_t) (unsigned char) code[0] * 256 + (unsigned char) code[1];
		hits++;
	}
	return hits;
}

int
main(int argc, char **argv)
{
	MMDB_s		mmdb;
	struct sockaddr_storage *addrs;
	size_t		count;
	size_t		hits = 0;
	int			passes = 3;
	double	   *seconds;
	uint64_t	checksum = 0;
	int			status;
	int			p;

	if (argc < 3 || argc > 4)
	{
		fprintf(stderr, "usage: geoip_loop DATABASE.mmdb ADDRESSES.txt [PASSES]\n");
		return 2;
	}
	if (argc == 4 && (passes = atoi(argv[3])) < 1)
		die("PASSES must be a positive number", argv[3]);

	status = MMDB_open(argv[1], MMDB_MODE_MMAP, &mmdb);
	if (status != MMDB_SUCCESS)
		die(MMDB_strerror(status), argv[1]);
	count = read_addresses(argv[2], &addrs);
	if (count == 0)
		die("no addresses in", argv[2]);

	seconds = malloc(passes * sizeof(double));
	for (p = 0; p < passes; p++)
	{
		double		start = now_seconds();
		size_t		pass_hits = lookup_all(&mmdb, addrs, count, &checksum);

		seconds[p] = now_seconds() - start;
		if (p > 0 && pass_hits != hits)
			die("passes disagree on the number of hits", NULL);
		hits = pass_hits;
		fprintf(stderr, "geoip_loop: pass %d: %.3f s, %zu hits of %zu\n", p + 1, seconds[p], hits, count);
	}
	qsort(seconds, passes, sizeof(double), compare_doubles);
	/* the checksum keeps the copies alive; print it where nobody parses it */
	fprintf(stderr, "geoip_loop: checksum %llu\n", (unsigned long long) checksum);
	printf("%.6f %zu %zu\n", seconds[passes / 2], hits, count);

	MMDB_close(&mmdb);
	free(addrs);
	free(seconds);
	return 0;
}
