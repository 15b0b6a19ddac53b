/*
 * ato_response.h
 *     The extension's schema name and its settings (GUC variables), shared by
 *     its C files.  The variables are defined and registered in
 *     ato_response.c.
 */
#ifndef ATO_RESPONSE_H
#define ATO_RESPONSE_H

/* The extension's schema (the control file's "schema"; not relocatable). */
#define ATO_SCHEMA "ato"

/* ato_response.geoip_database: path of the country/city MaxMind DB file */
extern char *ato_geoip_database_path;

/* ato_response.asn_database: path of an optional ASN MaxMind DB file */
extern char *ato_asn_database_path;

/* ato_response.locate_special_addresses: look up private, documentation ... addresses too */
extern bool ato_locate_special_addresses;

/* ato_response.max_user_agent_length: longer user agents are cut (bytes) */
extern int	ato_max_user_agent_length;

/* ato_response.max_future_skew: seconds an event may be dated ahead of the clock */
extern int	ato_max_future_skew;

/* ato_response.revocation_fence_timeout: ms a revocation waits for logins in flight */
extern int	ato_revocation_fence_timeout;
extern char *ato_shard_name;

/* ato_response.revocation_batch_size: accounts an incident marks per batch */
extern int	ato_revocation_batch_size;

/* ato_response.inline_marking_limit: larger incidents mark in a worker */
extern int	ato_inline_marking_limit;

/* ato_response.revocation_channel: where each batch's outbox position is announced */
extern char *ato_revocation_channel;

/* ato_response.databases: databases the launcher starts workers in */
extern char *ato_databases;

/* ato_response.detection_interval: seconds between detection cycles */
extern int	ato_detection_interval;

/* ato_response.rule_timeout: milliseconds one rule's run may take */
extern int	ato_rule_timeout;

/* ato_response.retention: minutes of events kept (0: all) */
extern int	ato_retention;

/* ato_response.alert_channel: where new alerts are announced */
extern char *ato_alert_channel;

#endif							/* ATO_RESPONSE_H */
