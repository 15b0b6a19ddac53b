/*
 * geoip_load.c
 *     Loading a MaxMind DB file for src/geoip.c: its bytes are read into a
 *     private, sealed copy that only this backend holds.
 *
 * libmaxminddb can only map a file read-only and shared, and a file that
 * is truncated under a shared mapping raises SIGBUS at the next access to
 * a page past its new end: one careless "cp" or full disk would kill the
 * backend and make the postmaster restart every other.  So the file is
 * never mapped.  Its bytes are read (read(2) cannot fault) into a memfd,
 * the memfd is sealed against shrinking, growing and writing, and
 * libmaxminddb maps the memfd through /proc/self/fd.  Nothing can truncate
 * a sealed memfd, not even its owner, and the mapping keeps it alive once
 * the descriptors are closed: MMDB_close() frees it.  The cost is memory,
 * one copy of the file per backend that uses GeoIP.
 *
 * A file that changes while it is read (size, mtime or inode differ before
 * and after, or fewer or more bytes came than fstat() said) is not used;
 * the caller retries at its next check.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "geoip.h"

#if !defined(MFD_ALLOW_SEALING) || !defined(F_ADD_SEALS)
#error "ato_response needs memfd_create() with sealing (Linux 3.17 or later) for its GeoIP copies"
#endif

#define GEO_READ_CHUNK (1024 * 1024)

static void geo_fail(GeoLoadFailure *failure, int sqlstate, const char *fmt,...)
			pg_attribute_printf(3, 4);

static void
geo_fail(GeoLoadFailure *failure, int sqlstate, const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	vsnprintf(failure->reason, sizeof(failure->reason), fmt, args);
	va_end(args);
	failure->sqlstate = sqlstate;
}

int
geo_sqlstate_for_errno(int err)
{
	switch (err)
	{
		case ENOENT:
		case ENOTDIR:
			return ERRCODE_UNDEFINED_FILE;
		case EACCES:
		case EPERM:
			return ERRCODE_INSUFFICIENT_PRIVILEGE;
		default:
			return ERRCODE_IO_ERROR;
	}
}

void
geo_file_id(const struct stat *st, GeoFileId *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime_ns = (int64) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

bool
geo_same_file(const GeoFileId *a, const GeoFileId *b)
{
	return a->dev == b->dev && a->ino == b->ino &&
		a->size == b->size && a->mtime_ns == b->mtime_ns;
}

/* Write all of buf to fd; false with errno set on failure. */
static bool
geo_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, buf, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return false;
		}
		buf += n;
		len -= n;
	}
	return true;
}

/*
 * Copy the file at path into a new sealed memfd.  Returns the memfd, or -1
 * with *failure filled.  *id is the identity of what was read.
 */
static int
geo_copy_file(const char *path, char *buf, GeoFileId *id, GeoLoadFailure *failure)
{
	int			src;
	int			copy;
	struct stat before;
	struct stat after;
	GeoFileId	after_id;
	off_t		total = 0;
	int			err;

	/* O_NONBLOCK: a FIFO swapped in after the caller's stat() must not block */
	src = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (src < 0)
	{
		err = errno;
		geo_fail(failure, geo_sqlstate_for_errno(err), "could not open the file: %s", strerror(err));
		return -1;
	}
	if (fstat(src, &before) != 0)
	{
		err = errno;
		close(src);
		geo_fail(failure, geo_sqlstate_for_errno(err), "could not stat the file: %s", strerror(err));
		return -1;
	}
	geo_file_id(&before, id);
	if (!S_ISREG(before.st_mode))
	{
		close(src);
		geo_fail(failure, ERRCODE_WRONG_OBJECT_TYPE, "not a regular file");
		return -1;
	}
	if (before.st_size == 0)
	{
		close(src);
		geo_fail(failure, ERRCODE_DATA_CORRUPTED, "the file is empty");
		return -1;
	}

	copy = memfd_create("ato_response geoip", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (copy < 0)
	{
		err = errno;
		close(src);
		geo_fail(failure, err == ENOMEM ? ERRCODE_OUT_OF_MEMORY : ERRCODE_SYSTEM_ERROR,
				 "could not create a private copy: %s", strerror(err));
		return -1;
	}

	for (;;)
	{
		ssize_t		n = read(src, buf, GEO_READ_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			err = errno;
			close(src);
			close(copy);
			geo_fail(failure, ERRCODE_IO_ERROR, "could not read the file: %s", strerror(err));
			return -1;
		}
		if (n == 0)
			break;
		total += n;
		if (total > before.st_size)
			break;				/* growing under us: do not copy without end */
		if (!geo_write_all(copy, buf, n))
		{
			err = errno;
			close(src);
			close(copy);
			geo_fail(failure, err == ENOSPC || err == ENOMEM ? ERRCODE_OUT_OF_MEMORY : ERRCODE_SYSTEM_ERROR,
					 "could not fill the private copy: %s", strerror(err));
			return -1;
		}
	}

	err = fstat(src, &after) != 0 ? errno : 0;
	close(src);
	if (err == 0)
		geo_file_id(&after, &after_id);
	if (err != 0 || total != before.st_size || !geo_same_file(id, &after_id))
	{
		close(copy);
		failure->transient = true;
		geo_fail(failure, ERRCODE_OBJECT_IN_USE,
				 "the file changed while it was read (%lld bytes read of %lld)",
				 (long long) total, (long long) before.st_size);
		return -1;
	}

	if (fcntl(copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
	{
		err = errno;
		close(copy);
		geo_fail(failure, ERRCODE_SYSTEM_ERROR, "could not seal the private copy: %s", strerror(err));
		return -1;
	}
	return copy;
}

/* Describe a failed MMDB_open() of the private copy. */
static void
geo_open_failed(int status, int saved_errno, GeoLoadFailure *failure)
{
	if (status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR)
		geo_fail(failure, ERRCODE_SYSTEM_ERROR, "could not open the private copy: %s",
				 saved_errno ? strerror(saved_errno) : MMDB_strerror(status));
	else if (status == MMDB_OUT_OF_MEMORY_ERROR)
		geo_fail(failure, ERRCODE_OUT_OF_MEMORY, "out of memory while opening it");
	else
		geo_fail(failure, ERRCODE_DATA_CORRUPTED, "not a valid MaxMind DB file: %s",
				 MMDB_strerror(status));
}

MMDB_s *
geo_load(const char *path, GeoFileId *id, GeoLoadFailure *failure)
{
	MemoryContext work;
	MemoryContext old;
	MMDB_s	   *volatile fresh = NULL;
	volatile int copy = -1;
	volatile bool ok = false;
	char	   *buf;

	memset(failure, 0, sizeof(*failure));
	memset(id, 0, sizeof(*id));

	work = AllocSetContextCreate(CurrentMemoryContext, "ato_response geoip load",
								 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	PG_TRY();
	{
		buf = palloc(GEO_READ_CHUNK);
		copy = geo_copy_file(path, buf, id, failure);
		if (copy >= 0)
		{
			fresh = malloc(sizeof(MMDB_s));
			if (fresh == NULL)
				geo_fail(failure, ERRCODE_OUT_OF_MEMORY, "out of memory");
			else
			{
				char		proc_path[64];
				int			status;
				int			saved_errno;

				memset(fresh, 0, sizeof(MMDB_s));
				snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", copy);
				errno = 0;
				status = MMDB_open(proc_path, MMDB_MODE_MMAP, fresh);
				saved_errno = errno;
				close(copy);	/* the mapping, if any, keeps the copy alive */
				copy = -1;
				if (status != MMDB_SUCCESS)
				{
					free(fresh);
					fresh = NULL;
					geo_open_failed(status, saved_errno, failure);
				}
				else
					ok = true;
			}
		}
	}
	PG_CATCH();
	{
		/* out of memory */
		if (copy >= 0)
			close(copy);
		if (fresh != NULL)
			geo_unload(fresh);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(work);
		PG_RE_THROW();
	}
	PG_END_TRY();

	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	if (!ok && fresh != NULL)
	{
		geo_unload(fresh);
		fresh = NULL;
	}
	return fresh;
}

void
geo_unload(MMDB_s *mmdb)
{
	MMDB_close(mmdb);
	free(mmdb);
}
