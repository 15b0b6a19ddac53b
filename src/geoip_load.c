/*
 * geoip_load.c
 *     Loading a MaxMind DB file for src/geoip.c: its bytes are read into a
 *     private, sealed copy that only this backend holds, and the copy is
 *     verified whole before anyone looks an address up in it.
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
 *
 * Verification walks the whole search tree from the root: every record is
 * a node, the empty value or a pointer into the data section (not into the
 * separator or the metadata); the 16 separator bytes are zero; no path
 * from the root is longer than the address has bits (so no lookup runs off
 * the tree, and a cycle is caught); every node is reachable from the root
 * (a redirected record leaves its old subtree orphaned); and each distinct
 * data record is decoded once, and must be a map.  A file that fails any of
 * this is refused whole.
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

/* "\xAB\xCD\xEFMaxMind.com", which precedes the metadata section */
#define GEO_METADATA_MARKER_LENGTH 14

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

/*
 * The whole-file check described at the top.  Returns true, or false with
 * *failure filled.
 */
static bool
geo_verify(MMDB_s *mmdb, GeoLoadFailure *failure)
{
	typedef struct WalkFrame
	{
		uint32		node;
		uint8		next;		/* 0: left record next, 1: right, 2: done */
		uint8		height;		/* longest path below, in nodes */
		uint64		records[2];
	} WalkFrame;

	const uint32 node_count = mmdb->metadata.node_count;
	const int	depth = mmdb->depth;
	const uint8 in_progress = 0xFF;
	uint64		tree_size = (uint64) node_count * mmdb->full_record_byte_size;
	const uint8_t *separator;
	uint32		data_limit;
	uint8	   *height;			/* per node: 0 unvisited, else 1 + nodes below */
	uint8	   *seen;			/* per data byte offset: decoded already */
	WalkFrame  *stack;
	int			sp = 0;
	uint64		reached = 0;
	uint64		steps = 0;
	int			i;

	if (depth != 32 && depth != 128)
	{
		geo_fail(failure, ERRCODE_DATA_CORRUPTED, "the metadata says IP version %u", mmdb->metadata.ip_version);
		return false;
	}

	/*
	 * The tree and its separator must lie inside the file, where the data
	 * section begins.  libmaxminddb checks the tree's size in 32 bits, so a
	 * node count that wraps it (0x20000001 nodes of 8 bytes "are" 8 bytes)
	 * passes MMDB_open() and would send every read below far past the copy.
	 */
	if (mmdb->file_size > UINT32_MAX || tree_size + 16 > (uint64) mmdb->file_size ||
		mmdb->data_section != mmdb->file_content + tree_size + 16)
	{
		geo_fail(failure, ERRCODE_DATA_CORRUPTED,
				 "the metadata's node count (%u nodes of %u bytes) does not fit the file's %zu bytes",
				 node_count, (unsigned) mmdb->full_record_byte_size, (size_t) mmdb->file_size);
		return false;
	}
	separator = mmdb->file_content + tree_size;
	for (i = 0; i < 16; i++)
		if (separator[i] != 0)
		{
			geo_fail(failure, ERRCODE_DATA_CORRUPTED,
					 "the 16 bytes after the search tree are not zero (byte " UINT64_FORMAT ")", tree_size + i);
			return false;
		}

	/* the data section ends where the metadata marker begins */
	if (mmdb->metadata_section < mmdb->data_section + GEO_METADATA_MARKER_LENGTH)
	{
		geo_fail(failure, ERRCODE_DATA_CORRUPTED, "the metadata overlaps the search tree");
		return false;
	}
	data_limit = (uint32) (mmdb->metadata_section - GEO_METADATA_MARKER_LENGTH - mmdb->data_section);

	height = MemoryContextAllocExtended(CurrentMemoryContext, (Size) node_count + 1,
										MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM | MCXT_ALLOC_ZERO);
	seen = MemoryContextAllocExtended(CurrentMemoryContext, (Size) data_limit / 8 + 1,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM | MCXT_ALLOC_ZERO);
	stack = MemoryContextAllocExtended(CurrentMemoryContext, sizeof(WalkFrame) * (depth + 1),
									   MCXT_ALLOC_NO_OOM);
	if (height == NULL || seen == NULL || stack == NULL)
	{
		geo_fail(failure, ERRCODE_OUT_OF_MEMORY, "out of memory while verifying it (%u nodes)", node_count);
		return false;
	}

	/* iterative depth-first walk from the root; each node is expanded once */
	for (;;)
	{
		uint32		node;
		WalkFrame  *frame;
		uint64		record;

		if (sp == 0)
			node = 0;
		else
		{
			frame = &stack[sp - 1];
			if (frame->next == 2)
			{
				/*
				 * Both records done: the node's height is known.  The path
				 * from the root through it has sp - 1 nodes above it.
				 */
				if (sp - 1 + frame->height + 1 > depth)
				{
					geo_fail(failure, ERRCODE_DATA_CORRUPTED,
							 "the search tree is corrupt: a path through node %u is longer than %d bits",
							 frame->node, depth);
					return false;
				}
				height[frame->node] = frame->height + 1;
				sp--;
				if (sp == 0)
					break;
				if (stack[sp - 1].height < frame->height + 1)
					stack[sp - 1].height = frame->height + 1;
				continue;
			}
			record = frame->records[frame->next++];
			if (record >= node_count)
				continue;		/* empty or data: checked when the node was read */
			node = (uint32) record;
			if (height[node] == in_progress)
			{
				geo_fail(failure, ERRCODE_DATA_CORRUPTED,
						 "the search tree is corrupt: node %u leads back to itself", node);
				return false;
			}
			if (height[node] != 0)
			{
				/* reached before, through an alias: its height is known */
				if (frame->height < height[node])
					frame->height = height[node];
				continue;
			}
		}

		/* expand a new node */
		if (sp == depth)
		{
			geo_fail(failure, ERRCODE_DATA_CORRUPTED,
					 "the search tree is corrupt: a path through node %u is longer than %d bits", node, depth);
			return false;
		}
		{
			MMDB_search_node_s found;
			int			status = MMDB_read_node(mmdb, node, &found);
			int			side;

			if (status != MMDB_SUCCESS)
			{
				geo_fail(failure, ERRCODE_DATA_CORRUPTED, "node %u: %s", node, MMDB_strerror(status));
				return false;
			}
			for (side = 0; side < 2; side++)
			{
				uint64		record = side == 0 ? found.left_record : found.right_record;
				MMDB_entry_s entry = {.mmdb = mmdb};
				MMDB_entry_data_list_s *list = NULL;

				/*
				 * Classified here rather than by libmaxminddb, whose checks
				 * differ between versions: a node other than the root, the
				 * empty value, or data before the metadata marker.
				 */
				if (record == 0)
				{
					geo_fail(failure, ERRCODE_DATA_CORRUPTED,
							 "the search tree is corrupt: node %u points back to the root", node);
					return false;
				}
				if (record <= node_count)
					continue;	/* a node (walked below) or the empty value */
				if (record < (uint64) node_count + 16 ||
					record - node_count - 16 >= data_limit)
				{
					geo_fail(failure, ERRCODE_DATA_CORRUPTED,
							 "the search tree is corrupt: node %u points outside the data section", node);
					return false;
				}
				entry.offset = (uint32) (record - node_count - 16);
				if (seen[entry.offset / 8] & (1 << (entry.offset % 8)))
					continue;
				seen[entry.offset / 8] |= 1 << (entry.offset % 8);

				status = MMDB_get_entry_data_list(&entry, &list);
				if (status == MMDB_SUCCESS && list != NULL &&
					list->entry_data.type != MMDB_DATA_TYPE_MAP)
					status = MMDB_INVALID_DATA_ERROR;
				MMDB_free_entry_data_list(list);
				if (status != MMDB_SUCCESS)
				{
					geo_fail(failure, ERRCODE_DATA_CORRUPTED,
							 "the record at data offset %u is damaged: %s", entry.offset, MMDB_strerror(status));
					return false;
				}
			}
			frame = &stack[sp++];
			frame->node = node;
			frame->next = 0;
			frame->height = 0;
			frame->records[0] = found.left_record;
			frame->records[1] = found.right_record;
			height[node] = in_progress;
			reached++;
		}
		if ((++steps & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}

	if (reached != node_count)
	{
		geo_fail(failure, ERRCODE_DATA_CORRUPTED,
				 "the search tree is corrupt: %llu of its %u nodes cannot be reached from the root",
				 (unsigned long long) (node_count - reached), node_count);
		return false;
	}
	return true;
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
					ok = geo_verify(fresh, failure);
			}
		}
	}
	PG_CATCH();
	{
		/* an interrupt during the walk, or out of memory */
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
