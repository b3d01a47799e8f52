/* What every request handler shares: configuration and the database pool. */
#ifndef ROASTERY_APP_H
#define ROASTERY_APP_H

#include "config.h"
#include "db.h"

typedef struct {
    const config *cfg;
    db_pool *pool;
} app_ctx;

#endif
