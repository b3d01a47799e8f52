/* The trainer's output files, staged under temporary names and renamed into
 * place together at the end, so a killed trainer leaves no half file behind. */
#ifndef ROASTERY_TRAIN_OUTPUT_H
#define ROASTERY_TRAIN_OUTPUT_H

#include <jansson.h>
#include <stddef.h>

typedef struct train_output train_output;

/* A set of files to publish in dir (created with its parents if missing).
 * RST_OK with *out (new: caller ends it with train_output_commit or
 * train_output_abort), or RST_EIO with err. */
int train_output_open(const char *dir, train_output **out, char *err, size_t errlen);

/* Removes name from dir if present (a previous run's file). */
void train_output_remove_stale(train_output *o, const char *name);

/* Writes name's whole content under a temporary name in dir. RST_OK or RST_EIO. */
int train_output_stage(train_output *o, const char *name, const void *data, size_t len, char *err,
                       size_t errlen);

/* Same for a JSON document (indented, keys in insertion order); j is borrowed. */
int train_output_stage_json(train_output *o, const char *name, json_t *j, char *err, size_t errlen);

/* Renames every staged file into place (all or, on a failure, as many as could
 * be; the rest are removed) and frees o. RST_OK or RST_EIO. */
int train_output_commit(train_output *o, char *err, size_t errlen);

/* Removes every staged file and frees o. NULL-safe; async-signal-unsafe. */
void train_output_abort(train_output *o);

#endif
