/*
 * ato_response--0.1.0.sql
 *     The extension's objects in schema ato, assembled by the Makefile from
 *     install/sections/ (edit those, then run make): settings, GeoIP, the
 *     event store and its partitions, recording events, the per-account
 *     summaries, detection, the response to incidents, the always-on rules,
 *     and the closing privileges.  Each function's REVOKE stands next to it.
 */
\echo Use "CREATE EXTENSION ato_response" to load this file. \quit
