/* What every request handler shares: configuration and the database pool. */
#ifndef ROASTERY_APP_H
#define ROASTERY_APP_H

#include "core/config.h"
#include "db/db.h"

typedef struct access_guard access_guard;
typedef struct devissuer devissuer;
typedef struct artifact_store artifact_store;
typedef struct model_cache model_cache;

typedef struct {
    const config *cfg;
    db_pool *pool;
    db_pool *stats_pool; /* whose gauges /metrics shows; NULL = pool */
    access_guard *guard;
    devissuer *dev; /* the local issuer with ROASTERY_AUTH=dev, else NULL */
    artifact_store *artifacts;
    model_cache *models; /* the serving cache of trained models */
} app_ctx;

#endif
