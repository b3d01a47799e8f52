/* Files built into the binary by cmake/embed.cmake. */
#ifndef ROASTERY_EMBEDDED_H
#define ROASTERY_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
    const char *name;
    const char *data;
    size_t len;
};

extern const char *const embedded_openapi;
extern const size_t embedded_openapi_len;
/* Sorted by name; terminated by a NULL name. */
extern const struct embedded_file embedded_migrations[];
extern const size_t embedded_migrations_count;

#endif
