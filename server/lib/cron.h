/* Five-field cron expressions (minute hour day-of-month month day-of-week)
 * and the next time one fires in an IANA time zone, read from the system's
 * TZif files (with their POSIX rule for times after the last transition), so
 * nothing touches the process-wide TZ. */
#ifndef ROASTERY_CRON_H
#define ROASTERY_CRON_H

#include <stddef.h>
#include <stdint.h>

/* The longest expression accepted, in bytes. */
#define CRON_MAX_TEXT 200

/* A parsed expression: one bit per allowed value. */
typedef struct {
    uint64_t minutes; /* bits 0-59 */
    uint32_t hours;   /* bits 0-23 */
    uint32_t mdays;   /* bits 1-31 */
    uint16_t months;  /* bits 1-12 */
    uint8_t wdays;    /* bits 0-6, Sunday = 0 (7 is read as Sunday) */
    /* As in Vixie cron: when both day fields are restricted (neither starts
     * with '*'), a day matches when either does; otherwise both must. */
    int mday_star, wday_star;
} cron_expr;

/* Parses text: lists (1,15), ranges (1-5), steps (* /15 without the space,
 * 0-30/10, 5/15 = 5-max/15), names (JAN-DEC, SUN-SAT, case-insensitive;
 * FRI-SUN wraps to 5-7) and the macros @yearly @annually @monthly @weekly
 * @daily @midnight @hourly. RST_OK, or RST_EINVAL with a reason in err naming
 * the field and the 1-based character position, e.g.
 *   "hour field at position 3: 24 is out of range 0-23". */
int cron_parse(const char *text, cron_expr *out, char *err, size_t errlen);

typedef struct cron_tz cron_tz;

/* Loads a zone: "UTC" (also "Etc/UTC", "") or an IANA name such as
 * America/New_York from /usr/share/zoneinfo. RST_OK with *out (new: caller
 * frees with cron_tz_free), RST_EINVAL for a malformed name, RST_ENOTFOUND
 * for an unknown zone; err says which. */
int cron_tz_load(const char *name, cron_tz **out, char *err, size_t errlen);
void cron_tz_free(cron_tz *tz);

/* Seconds east of UTC in effect at the UTC instant t (tz NULL = UTC). */
int32_t cron_tz_offset(const cron_tz *tz, int64_t t);

/* The first instant strictly after `after` (Unix seconds) at which e fires,
 * reading its fields as wall-clock time in tz (NULL = UTC). Wall-clock times
 * that do not exist (the hour skipped when clocks go forward) fire at the
 * moment the clocks jump; times that occur twice (the hour repeated when
 * clocks go back) fire at the first occurrence only (as cronie does).
 * RST_OK with *next, or RST_ENOTFOUND when it never fires within 10 years. */
int cron_next(const cron_expr *e, const cron_tz *tz, int64_t after, int64_t *next);

#endif
