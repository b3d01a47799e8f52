/* Small shared helpers: allocation that aborts on OOM, a bounded growable
 * buffer, strict number parsing and clocks. */
#ifndef ROASTERY_UTIL_H
#define ROASTERY_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Status codes shared by every module: 0 is success, failures are negative. */
enum {
    RST_OK = 0,
    RST_ENOMEM = -1,
    RST_EINVAL = -2,
    RST_ETOOBIG = -3,
    RST_EDB = -4,
    RST_ENOTFOUND = -5,
    RST_ECONFLICT = -6,
    RST_EIO = -7,
    RST_EUNAVAIL = -8,
};

/* The number of elements of an array (not of a pointer). */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Internal allocations: never return NULL (log and abort on OOM). */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* new: caller frees with free() */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer with a hard cap; data is always NUL-terminated. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t limit; /* 0 = no limit */
} buf_t;

void buf_init(buf_t *b, size_t limit);
/* Returns RST_OK or RST_ETOOBIG (buffer unchanged) when limit would be passed. */
int buf_append(buf_t *b, const void *data, size_t n);
int buf_puts(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the data; the buffer may be reused after buf_init. */
void buf_free(buf_t *b);

/* Strict parsers: whole string, range checked. RST_OK or RST_EINVAL. */
int parse_long(const char *s, long min, long max, long *out);
int parse_bool(const char *s, int *out);

/* The path of this program, for child processes (roastery train, forecast).
 * A binary replaced on disk while running (an upgrade, a rebuild) shows as
 * "<path> (deleted)": the path then names the new one, which is what a child
 * should run. RST_OK or RST_EIO. */
int self_exe(char *out, size_t cap);

/* Removes dir and everything under it, without following symlinks; a missing
 * dir is fine (working directories of child processes). */
void remove_tree(const char *dir);

/* Whether kv ("NAME=value") is named by names (NULL-terminated, may be NULL) or list
 * (comma-separated, may be NULL); an entry ending in '*' names a prefix ("ARM_*"). */
int env_listed(const char *kv, const char *const *names, const char *list);

/* new: our environment cut to the variables env_listed names, NULL-terminated. The array is
 * the caller's to free(); the strings stay borrowed from environ. Children get this, never all
 * of environ (which holds the client secret and the connection strings). */
char **env_allowlist(const char *const *names, const char *list);

/* The names spawn_in_group passes on (NULL-terminated, static), for other spawners of the
 * trainer. */
const char *const *child_env_names(void);

/* Starts argv[0] (a path) as a child of its own process group, so a kill of
 * the group reaches everything it starts: stdin from /dev/null, stdout on
 * out_fd, stderr on err_fd, signal mask and dispositions reset, in cwd (NULL:
 * ours), with only PATH, HOME, LANG, LC_ALL, TZ and the sanitizers' options of our
 * environment (the trainer and the forecast generator read nothing else, and they parse
 * user data). RST_OK with *pid, or RST_EIO. */
int spawn_in_group(char *const argv[], int out_fd, int err_fd, const char *cwd, pid_t *pid);

/* Clocks in milliseconds. */
int64_t now_ms_monotonic(void);
int64_t now_ms_wall(void);

/* Proleptic Gregorian calendar <-> days since 1970-01-01 (H. Hinnant's
 * civil calendar algorithms). */
int32_t util_days_from_civil(int y, int m, int d);
void util_civil_from_days(int32_t z, int *y, int *m, int *d);
/* Days in month m (1-12) of year y. */
int util_month_days(int y, int m);
/* 0 = Monday ... 6 = Sunday of a day since 1970-01-01. */
int util_weekday(int32_t days);

/* Fills out with 16 random bytes hex-encoded (32 chars + NUL). */
void random_hex_id(char out[33]);

#endif
