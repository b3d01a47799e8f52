/* The server's serving cache of trained models: a few XGBoost boosters
 * loaded from their versions' artifacts (model.json + features.json) and
 * kept, least recently used first out, so scoring does not reload a model
 * per request. Thread-safe. */
#ifndef ROASTERY_MODEL_CACHE_H
#define ROASTERY_MODEL_CACHE_H

#include "artifacts/artifacts.h"

#include <jansson.h>
#include <stddef.h>

#define MODEL_CACHE_ENTRIES 8
#define MODEL_CACHE_MAX_ROWS 10000

typedef struct model_cache model_cache;

/* store is borrowed. scratch_dir: where artifacts are copied to load them.
 * new: model_cache_free. */
model_cache *model_cache_new(artifact_store *store, const char *scratch_dir);
void model_cache_free(model_cache *mc);

/* Scores rows (an array of objects: feature name -> number, or for a
 * categorical feature its level name or code) with the model whose
 * artifacts are listed in artifacts ([{name, key}], as a run records them),
 * cached under id. *out (new) gets {"predictions": [...], "features": [...]}.
 * RST_OK; RST_EINVAL with field and reason for bad rows; RST_ENOTFOUND or
 * RST_EIO (reason set) when the model cannot be loaded. */
int model_cache_predict(model_cache *mc, const char *id, json_t *artifacts, json_t *rows,
                        json_t **out, char *field, size_t fieldlen, char *reason,
                        size_t reasonlen);

/* Models loaded now (for /metrics and tests). */
int model_cache_size(model_cache *mc);

#endif
