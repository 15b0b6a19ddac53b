/*
 * fence.h
 *     The revocation fence between ato.login_gate() and a revocation in
 *     flight (src/fence.c).
 */
#ifndef ATO_RESPONSE_FENCE_H
#define ATO_RESPONSE_FENCE_H

#include "postgres.h"

/* Accounts a revocation fences one by one; past this, by bucket. */
#define ATO_FENCE_ACCOUNT_KEYS 1024

/* Buckets the accounts are spread over (the most locks a large revocation holds). */
#define ATO_GATE_BUCKETS 1024

/*
 * For a revocation, before it takes its time: see src/fence.c.  True when
 * it fenced by bucket (a large incident), holding about every login.
 */
extern bool ato_fence_accounts(Datum *user_ids, int naccounts);

/* For a login: the account's bucket, held to the end of the transaction. */
extern void ato_fence_gate(text *user_id);

#endif							/* ATO_RESPONSE_FENCE_H */
