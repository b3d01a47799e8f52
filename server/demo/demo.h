/* roastery demo: the platform with GloboJava's data. The seeding goes
 * through the public HTTP API with dev-issuer tokens, exactly as people and
 * notebooks would, so it stays true as the API grows; every step is
 * idempotent, so restarting the demo finds what it made and goes on. */
#ifndef ROASTERY_DEMO_H
#define ROASTERY_DEMO_H

#include "core/config.h"
#include "identity/devissuer.h"

#include <signal.h>

#define DEMO_PROJECT "globojava"
#define DEMO_STORES 12
#define DEMO_PRODUCTS 12
#define DEMO_HISTORY_DAYS 730 /* two years of sales, ending yesterday by this machine's clock */
#define DEMO_COMPUTE "this-machine" /* a local compute target of one slot */

/* The demo's people (dev-issuer user names). */
#define DEMO_ADMIN "demo-admin"
#define DEMO_SCIENTIST "dana-scientist"
#define DEMO_MANAGER "sam-manager"
#define DEMO_APPROVER "ada-approver" /* the second admin that four eyes need */

typedef struct demo_seeder demo_seeder;

/* The demo's terminal reads like a product: a few lines on stdout saying
 * what is being set up, then where to sign in. The JSON log goes to
 * $ROASTERY_DATA_DIR/roastery.log (warnings and errors are copied to
 * stderr). Call first thing in `roastery demo`. */
void demo_console_begin(const config *cfg);
/* One setup step: begin prints its label, end the result and the seconds
 * since begin. fmt may be NULL (prints "done"). */
void demo_console_step_begin(const char *label);
void demo_console_step_end(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The history the demo generates: DEMO_HISTORY_DAYS ending yesterday in
 * the machine's local time zone (YYYY-MM-DD). */
void demo_history_range(char start[11], char end[11]);

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
