/* Request body validation helpers. */
#include "http/validate.h"
#include "lib/util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void v_init(validator *v)
{
    v->errors = json_array();
}

void v_error(validator *v, const char *field, const char *reason)
{
    json_array_append_new(v->errors, json_pack("{s:s, s:s}", "field", field, "reason", reason));
}

void v_only(validator *v, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(*a, key);
        if (!ok)
            v_error(v, key, "is not a field of this resource");
    }
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

const char *v_string(validator *v, json_t *obj, const char *field, int required,
                     size_t maxlen, const char *(*check)(const char *))
{
    json_t *val = json_object_get(obj, field);
    if (!val || json_is_null(val)) {
        if (required)
            v_error(v, field, "is required");
        return NULL;
    }
    if (!json_is_string(val)) {
        v_error(v, field, "must be a string");
        return NULL;
    }
    const char *s = json_string_value(val);
    if (strlen(s) != json_string_length(val)) {
        v_error(v, field, "must not contain NUL characters");
        return NULL;
    }
    if (required && !*s) {
        v_error(v, field, "must not be empty");
        return NULL;
    }
    if (utf8_chars(s) > maxlen) {
        char reason[64];
        snprintf(reason, sizeof reason, "must be at most %zu characters", maxlen);
        v_error(v, field, reason);
        return NULL;
    }
    const char *why = check ? check(s) : NULL;
    if (why) {
        v_error(v, field, why);
        return NULL;
    }
    return s;
}

int v_number(validator *v, json_t *obj, const char *field, double min, double max, double *out)
{
    json_t *val = json_object_get(obj, field);
    if (!val)
        return 0;
    if (!json_is_number(val)) {
        v_error(v, field, "must be a number");
        return 0;
    }
    double d = json_number_value(val);
    if (!isfinite(d) || d < min || d > max) {
        char reason[96];
        snprintf(reason, sizeof reason, "must be between %g and %g", min, max);
        v_error(v, field, reason);
        return 0;
    }
    *out = d;
    return 1;
}

int v_integer(validator *v, json_t *obj, const char *field, long long min, long long max,
              long long *out)
{
    json_t *val = json_object_get(obj, field);
    if (!val)
        return 0;
    if (!json_is_integer(val)) {
        v_error(v, field, "must be an integer");
        return 0;
    }
    long long n = json_integer_value(val);
    if (n < min || n > max) {
        char reason[96];
        snprintf(reason, sizeof reason, "must be from %lld to %lld", min, max);
        v_error(v, field, reason);
        return 0;
    }
    *out = n;
    return 1;
}

int v_finish(validator *v, http_req *req)
{
    size_t n = json_array_size(v->errors);
    if (!n) {
        json_decref(v->errors);
        v->errors = NULL;
        return 0;
    }
    json_t *first = json_array_get(v->errors, 0);
    char detail[300];
    snprintf(detail, sizeof detail, "%s: %s%s",
             json_string_value(json_object_get(first, "field")),
             json_string_value(json_object_get(first, "reason")),
             n > 1 ? " (and more, see errors)" : "");
    http_problem(req, 400, "validation", "Invalid request", v->errors, "%s", detail);
    v->errors = NULL;
    return 1;
}

const char *v_check_slug(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 63 || !islower((unsigned char)s[0]))
        return "must be 2 to 63 characters: a lower-case letter, then letters, digits or '-'";
    for (size_t i = 1; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return "must be 2 to 63 characters: a lower-case letter, then letters, digits or "
                   "'-'";
    return NULL;
}

const char *v_check_store_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64 || !isalnum((unsigned char)s[0]))
        return "must be 1 to 64 letters, digits, '_' or '-', starting with a letter or digit";
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_'))
            return "must be 1 to 64 letters, digits, '_' or '-', starting with a letter or "
                   "digit";
    return NULL;
}

const char *v_check_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return "must not contain control characters";
    return NULL;
}
