/*
 * workers.h
 *     Registering and starting the library's background workers: the
 *     launcher, the detection worker and the incident worker.  See
 *     src/workers.c; the workers' own loops are in src/detection_worker.c
 *     and src/incident_worker.c.
 */
#ifndef ATO_WORKERS_H
#define ATO_WORKERS_H

#include "postgres.h"

/* What an incident worker is told at registration (bgw_extra). */
typedef struct IncidentWorkerArgs
{
	Oid			database;
	TransactionId wait_for;		/* the opening transaction, or invalid */
} IncidentWorkerArgs;

/* At server start, from _PG_init (shared_preload_libraries only). */
extern void launcher_register(void);

/* Start an incident worker for database; false if none could be registered. */
extern bool incident_worker_launch(Oid database, TransactionId wait_for);

#endif							/* ATO_WORKERS_H */
