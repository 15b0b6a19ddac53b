/*
 * special_addresses.h
 *     Addresses that never get a country (src/special_addresses.c).
 */
#ifndef ATO_RESPONSE_SPECIAL_ADDRESSES_H
#define ATO_RESPONSE_SPECIAL_ADDRESSES_H

#include "utils/inet.h"

extern bool ato_special_purpose_address(const inet *addr);

#endif							/* ATO_RESPONSE_SPECIAL_ADDRESSES_H */
