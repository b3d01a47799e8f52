/* JSON-lines logger. Each line is written with one write(2) so lines from
 * different threads never interleave. */
#include "core/log.h"
#include "lib/util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static log_level min_level = LOG_INFO;
static int log_fd = STDERR_FILENO;
static log_level echo_level = LOG_ERROR + 1; /* nothing echoed while log_fd is stderr */
static _Thread_local char request_id[65];

static const char *level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *s, log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (!strcmp(s, level_names[i])) {
            *out = (log_level)i;
            return RST_OK;
        }
    }
    return RST_EINVAL;
}

void log_set_level(log_level level)
{
    min_level = level;
}

int log_enabled(log_level level)
{
    return level >= min_level;
}

void log_set_request_id(const char *id)
{
    if (!id) {
        request_id[0] = '\0';
        return;
    }
    snprintf(request_id, sizeof request_id, "%s", id);
}

const char *log_request_id(void)
{
    return request_id[0] ? request_id : NULL;
}

void log_fields(log_level level, const char *msg, json_t *obj)
{
    if (!log_enabled(level)) {
        json_decref(obj);
        return;
    }
    json_t *line = json_object();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    json_object_set_new(line, "ts", json_string(when));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "msg", json_string(msg));
    if (request_id[0])
        json_object_set_new(line, "request_id", json_string(request_id));
    if (obj) {
        json_object_update(line, obj);
        json_decref(obj);
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(line);
    if (!text)
        return;
    size_t len = strlen(text);
    text[len] = '\n'; /* replace the NUL: one write for the whole line */
    ssize_t w = write(log_fd, text, len + 1);
    if (log_fd != STDERR_FILENO && level >= echo_level)
        w = write(STDERR_FILENO, text, len + 1);
    (void)w;
    free(text);
}

int log_to_file(const char *path, log_level echo)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return RST_EIO;
    log_fd = fd; /* kept open for the process's life: any thread may log */
    echo_level = echo;
    return RST_OK;
}

void log_msg(log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fields(level, msg, NULL);
}
