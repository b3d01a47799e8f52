/* JSON nesting refused before parsing: jansson's parser recurses once per
 * level and CivetWeb's worker threads have 100 KiB stacks, so untrusted bytes
 * are scanned (iteratively) before any json_loadb sees them. */
#ifndef ROASTERY_JSONGUARD_H
#define ROASTERY_JSONGUARD_H

#include <jansson.h>
#include <stddef.h>

/* The API's limit: arrays and objects open at once, the outermost counted. */
enum { JSONGUARD_MAX_DEPTH = 32 };

/* Scans len bytes of would-be JSON. RST_OK when no more than max_depth arrays
 * or objects are ever open at once; RST_ETOOBIG otherwise, with *offset (may be
 * NULL) at the bracket that went one level too deep. Brackets inside strings
 * do not count (escapes are honoured). Not a validator: malformed input within
 * the limit passes and is left to the parser. O(len), no allocation. */
int jsonguard_depth(const char *data, size_t len, int max_depth, size_t *offset);

/* json_loadb(data, len, flags, err) behind jsonguard_depth with
 * JSONGUARD_MAX_DEPTH. RST_OK and *out (new: json_decref); RST_ETOOBIG when
 * nested too deeply, with err's text ("nested more than 32 levels deep"), line,
 * column and position at the offending bracket and its code
 * json_error_stack_overflow, as jansson reports its own depth limit; RST_EINVAL
 * with jansson's err when the bytes are not JSON. err may be NULL. */
int jsonguard_loadb(const char *data, size_t len, size_t flags, json_t **out, json_error_t *err);

#endif
