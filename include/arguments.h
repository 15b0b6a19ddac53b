/*
 * arguments.h
 *     The one rule for account ids passed to the extension (src/arguments.c).
 */
#ifndef ATO_RESPONSE_ARGUMENTS_H
#define ATO_RESPONSE_ARGUMENTS_H

#include "postgres.h"

/* 22004 for a NULL id, 22023 for an empty one, naming caller and argument. */
extern void ato_check_account_id(const char *caller, const char *argument, bool isnull, Datum user_id);

#endif							/* ATO_RESPONSE_ARGUMENTS_H */
