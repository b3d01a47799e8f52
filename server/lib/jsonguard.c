/* The one pre-scan every door runs before jansson parses untrusted JSON (JWT
 * header and payload, request bodies, Event Grid deliveries, JWKS documents):
 * a recursive parser fed 5,000 nested arrays overflows a worker thread's stack
 * and takes the whole process down. */
#include "lib/jsonguard.h"
#include "lib/util.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

int jsonguard_depth(const char *data, size_t len, int max_depth, size_t *offset)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped byte cannot end the string */
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                if (offset)
                    *offset = i;
                return RST_ETOOBIG;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--; /* unbalanced closers are the parser's to refuse */
        }
    }
    return RST_OK;
}

/* Fills err as jansson would: 1-based line, column in bytes, and the code in
 * the last byte of text (where json_error_code() reads it). */
static void too_deep(const char *data, size_t at, json_error_t *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    int line = 1, column = 1;
    for (size_t i = 0; i < at; i++) {
        if (data[i] == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    err->line = line;
    err->column = column;
    err->position = at < (size_t)INT_MAX ? (int)at : INT_MAX;
    snprintf(err->text, sizeof err->text, "nested more than %d levels deep", JSONGUARD_MAX_DEPTH);
    snprintf(err->source, sizeof err->source, "<buffer>");
    err->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_stack_overflow;
}

int jsonguard_loadb(const char *data, size_t len, size_t flags, json_t **out, json_error_t *err)
{
    *out = NULL;
    size_t at = 0;
    if (jsonguard_depth(data, len, JSONGUARD_MAX_DEPTH, &at)) {
        too_deep(data, at, err);
        return RST_ETOOBIG;
    }
    *out = json_loadb(data, len, flags, err);
    return *out ? RST_OK : RST_EINVAL;
}
