/* Structured logs: one JSON object per line on stderr, each carrying the
 * request id of the thread that writes it. */
#ifndef ROASTERY_LOG_H
#define ROASTERY_LOG_H

#include <jansson.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Returns RST_OK and sets *out for "debug", "info", "warn", "error". */
int log_level_parse(const char *s, log_level *out);
void log_set_level(log_level level);
int log_enabled(log_level level);

/* The request id put on every line this thread writes; NULL clears it.
 * Copied: the caller keeps its string. */
void log_set_request_id(const char *id);
const char *log_request_id(void);

/* Sends the lines to the file at path (appended) instead of stderr, and
 * copies those at echo_level or above to stderr too, so a person watching
 * the terminal still sees what went wrong. RST_OK or RST_EIO. */
int log_to_file(const char *path, log_level echo_level);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes msg plus the fields of obj. Steals obj (may be NULL). */
void log_fields(log_level level, const char *msg, json_t *obj);

#endif
