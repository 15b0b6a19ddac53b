/*
 * geoip_json.c
 *     Turns a MaxMind DB record into JSON text, for the "details" column of
 *     ato.geoip(): every field a database holds for an address, whatever
 *     its layout.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/float.h"
#include "utils/json.h"

#include "geoip.h"

static MMDB_entry_data_list_s *append_value(MMDB_entry_data_list_s *item, StringInfo out, int *status);

/*
 * Strings come from the file, and MaxMind DB readers do not check their
 * UTF-8.  Each valid character is kept (converted to the database encoding
 * when that is not UTF-8, or '?' where it has no equivalent there); NUL and
 * every byte that is not part of a valid sequence become U+FFFD (or '?'
 * where the database encoding cannot hold U+FFFD), so the JSON is always
 * valid text in the database encoding.
 */
static void
append_clean_text(const unsigned char *bytes, uint32 length, StringInfo out)
{
	int			encoding = GetDatabaseEncoding();
	bool		raw = encoding == PG_UTF8 || encoding == PG_SQL_ASCII;
	Oid			proc = InvalidOid;
	uint32		i = 0;

	if (!raw)
		proc = FindDefaultConversionProc(PG_UTF8, encoding);
	while (i < length)
	{
		int			len = pg_utf_mblen(&bytes[i]);

		if (bytes[i] != 0 && bytes[i] < 0x80)
		{
			appendStringInfoChar(out, (char) bytes[i]);
			i++;
			continue;
		}
		if (bytes[i] == 0 || len > (int) (length - i) ||
			!pg_utf8_islegal(&bytes[i], len))
		{
			appendStringInfoString(out, raw ? "\xEF\xBF\xBD" : "?");
			i++;
			continue;
		}
		if (raw)
			appendBinaryStringInfo(out, (const char *) &bytes[i], len);
		else
		{
			unsigned char converted[MAX_CONVERSION_GROWTH * 4 + 1];
			int			done = 0;

			if (OidIsValid(proc))
				done = pg_do_encoding_conversion_buf(proc, PG_UTF8, encoding,
													 (unsigned char *) &bytes[i], len,
													 converted, sizeof(converted), true);
			if (done == len)
				appendStringInfoString(out, (const char *) converted);
			else
				appendStringInfoChar(out, '?');
		}
		i += len;
	}
}

static void
append_string(const char *bytes, uint32 length, StringInfo out)
{
	StringInfoData clean;

	initStringInfo(&clean);
	append_clean_text((const unsigned char *) bytes, length, &clean);
	escape_json(out, clean.data);
	pfree(clean.data);
}

static void
append_double(double number, StringInfo out)
{
	if (isnan(number) || isinf(number))
		appendStringInfoString(out, "null");	/* JSON has no such numbers */
	else
		appendStringInfoString(out, float8out_internal(number));
}

static MMDB_entry_data_list_s *
append_map(MMDB_entry_data_list_s *item, StringInfo out, int *status)
{
	uint32		size = item->entry_data.data_size;
	uint32		i;

	appendStringInfoChar(out, '{');
	item = item->next;
	for (i = 0; i < size && item != NULL && *status == MMDB_SUCCESS; i++)
	{
		if (item->entry_data.type != MMDB_DATA_TYPE_UTF8_STRING)
		{
			*status = MMDB_INVALID_DATA_ERROR;
			break;
		}
		if (i > 0)
			appendStringInfoString(out, ", ");
		append_string(item->entry_data.utf8_string, item->entry_data.data_size, out);
		appendStringInfoString(out, ": ");
		item = item->next;
		if (item == NULL)
		{
			*status = MMDB_INVALID_DATA_ERROR;
			break;
		}
		item = append_value(item, out, status);
	}
	if (i < size && *status == MMDB_SUCCESS)
		*status = MMDB_INVALID_DATA_ERROR;
	appendStringInfoChar(out, '}');
	return item;
}

static MMDB_entry_data_list_s *
append_array(MMDB_entry_data_list_s *item, StringInfo out, int *status)
{
	uint32		size = item->entry_data.data_size;
	uint32		i;

	appendStringInfoChar(out, '[');
	item = item->next;
	for (i = 0; i < size && item != NULL && *status == MMDB_SUCCESS; i++)
	{
		if (i > 0)
			appendStringInfoString(out, ", ");
		item = append_value(item, out, status);
	}
	if (i < size && *status == MMDB_SUCCESS)
		*status = MMDB_INVALID_DATA_ERROR;
	appendStringInfoChar(out, ']');
	return item;
}

/* Append the value at item; returns the item after it (and its children). */
static MMDB_entry_data_list_s *
append_value(MMDB_entry_data_list_s *item, StringInfo out, int *status)
{
	MMDB_entry_data_s *data = &item->entry_data;

	check_stack_depth();
	switch (data->type)
	{
		case MMDB_DATA_TYPE_MAP:
			return append_map(item, out, status);
		case MMDB_DATA_TYPE_ARRAY:
			return append_array(item, out, status);
		case MMDB_DATA_TYPE_UTF8_STRING:
			append_string(data->utf8_string, data->data_size, out);
			break;
		case MMDB_DATA_TYPE_DOUBLE:
			append_double(data->double_value, out);
			break;
		case MMDB_DATA_TYPE_FLOAT:
			append_double(data->float_value, out);
			break;
		case MMDB_DATA_TYPE_UINT16:
			appendStringInfo(out, "%u", (unsigned) data->uint16);
			break;
		case MMDB_DATA_TYPE_UINT32:
			appendStringInfo(out, "%u", (unsigned) data->uint32);
			break;
		case MMDB_DATA_TYPE_INT32:
			appendStringInfo(out, "%d", (int) data->int32);
			break;
		case MMDB_DATA_TYPE_UINT64:
			appendStringInfo(out, UINT64_FORMAT, (uint64) data->uint64);
			break;
		case MMDB_DATA_TYPE_BOOLEAN:
			appendStringInfoString(out, data->boolean ? "true" : "false");
			break;
		default:
			/* bytes and 128-bit integers have no faithful JSON form */
			appendStringInfoString(out, "null");
			break;
	}
	return item->next;
}

/*
 * Append the record at entry to out as one JSON value.  Returns
 * MMDB_SUCCESS, or libmaxminddb's error for a damaged record (then out holds
 * a well-formed but partial value).
 */
int
geo_entry_to_json(MMDB_entry_s *entry, StringInfo out)
{
	MMDB_entry_data_list_s *list = NULL;
	int			status;

	status = MMDB_get_entry_data_list(entry, &list);
	if (status != MMDB_SUCCESS)
	{
		MMDB_free_entry_data_list(list);
		appendStringInfoString(out, "null");
		return status;
	}

	PG_TRY();
	{
		if (list == NULL)
			appendStringInfoString(out, "null");
		else
			append_value(list, out, &status);
	}
	PG_FINALLY();
	{
		MMDB_free_entry_data_list(list);
	}
	PG_END_TRY();
	return status;
}
