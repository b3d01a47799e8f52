/* roastery demo: the platform with GloboJava's data. The seeding goes
 * through the public HTTP API with dev-issuer tokens, exactly as people and
 * notebooks would, so it stays true as the API grows; every step is
 * idempotent, so restarting the demo finds what it made and goes on. */
#ifndef ROASTERY_DEMO_H
#define ROASTERY_DEMO_H

#include "devissuer.h"

#include <signal.h>

#define DEMO_PROJECT "globojava"
#define DEMO_STORES 12
#define DEMO_PRODUCTS 12
#define DEMO_START "2022-01-01"
#define DEMO_END "2023-12-31"
#define DEMO_COMPUTE "this-machine" /* a local compute target of one slot */

/* The demo's people (dev-issuer user names). */
#define DEMO_ADMIN "demo-admin"
#define DEMO_SCIENTIST "dana-scientist"
#define DEMO_MANAGER "sam-manager"
#define DEMO_APPROVER "ada-approver" /* the second admin that four eyes need */

typedef struct demo_seeder demo_seeder;

/* Starts seeding in a thread against the server listening on listen
 * ("host:port" or "port"); dev is borrowed and must outlive the seeder.
 * new: demo_seeder_stop. */
demo_seeder *demo_seeder_start(const char *listen, devissuer *dev);

/* Asks the seeder to stop between steps, waits for it and frees it. NULL-safe. */
void demo_seeder_stop(demo_seeder *s);

/* Seeds synchronously (the thread's body; tests call it). stop may be NULL.
 * RST_OK or an RST_* error, with every step logged. */
int demo_seed(const char *base_url, devissuer *dev, volatile sig_atomic_t *stop);

#endif
