/* Field validation for JSON request bodies: collects every problem so one
 * 400 answer names all the fields that are wrong and why. */
#ifndef ROASTERY_VALIDATE_H
#define ROASTERY_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

#include "http/http.h"

typedef struct {
    json_t *errors; /* array of {field, reason} */
} validator;

void v_init(validator *v);
/* Adds one error; reason is copied. */
void v_error(validator *v, const char *field, const char *reason);

/* Rejects fields of obj not named in allowed (NULL-terminated). */
void v_only(validator *v, json_t *obj, const char *const *allowed);

/* A string field: NULL when absent (an error when required) or invalid.
 * Borrowed from obj. check, when given, returns NULL when fine or the reason. */
const char *v_string(validator *v, json_t *obj, const char *field, int required,
                     size_t maxlen, const char *(*check)(const char *));
/* A number field within [min, max]; returns 1 when present and valid. */
int v_number(validator *v, json_t *obj, const char *field, double min, double max,
             double *out);
int v_integer(validator *v, json_t *obj, const char *field, long long min, long long max,
              long long *out);

/* When errors were found: answers 400 with all of them, frees, returns 1.
 * Otherwise frees and returns 0. */
int v_finish(validator *v, http_req *req);

/* Common checks (return NULL when fine, else the reason). */
const char *v_check_slug(const char *s);      /* ^[a-z][a-z0-9-]{1,62}$ */
const char *v_check_store_id(const char *s);  /* ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ */
const char *v_check_printable(const char *s); /* no control characters */

#endif
