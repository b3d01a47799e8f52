/* Atomic outputs: temporary files, fsync, then renames. */
#include "trainer/train_output.h"

#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STAGED 16

struct train_output {
    char *dir;
    int n;
    char *final[MAX_STAGED];
    char *temp[MAX_STAGED];
};

static int mkdirs(const char *path)
{
    char *p = xstrdup(path);
    int rc = RST_OK;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) && errno != EEXIST)
            rc = RST_EIO;
        *s = '/';
    }
    if (mkdir(p, 0755) && errno != EEXIST)
        rc = RST_EIO;
    struct stat st;
    if (stat(p, &st) || !S_ISDIR(st.st_mode))
        rc = RST_EIO;
    free(p);
    return rc;
}

int train_output_open(const char *dir, train_output **out, char *err, size_t errlen)
{
    *out = NULL;
    if (mkdirs(dir)) {
        snprintf(err, errlen, "cannot create the output directory %s: %s", dir, strerror(errno));
        return RST_EIO;
    }
    train_output *o = xcalloc(1, sizeof *o);
    o->dir = xstrdup(dir);
    *out = o;
    return RST_OK;
}

void train_output_remove_stale(train_output *o, const char *name)
{
    char *path = xasprintf("%s/%s", o->dir, name);
    unlink(path);
    free(path);
}

int train_output_stage(train_output *o, const char *name, const void *data, size_t len, char *err,
                       size_t errlen)
{
    int rc = RST_OK;
    if (o->n == MAX_STAGED) {
        snprintf(err, errlen, "too many outputs");
        return RST_EIO;
    }
    char *final = xasprintf("%s/%s", o->dir, name);
    char *temp = xasprintf("%s/.%s.part-%ld", o->dir, name, (long)getpid());
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", temp, strerror(errno));
        free(final);
        free(temp);
        return RST_EIO;
    }
    o->final[o->n] = final;
    o->temp[o->n] = temp;
    o->n++;
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "cannot write %s: %s", temp, strerror(errno));
            rc = RST_EIO;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (rc == RST_OK && fsync(fd)) {
        snprintf(err, errlen, "cannot write %s: %s", temp, strerror(errno));
        rc = RST_EIO;
    }
    if (close(fd) && rc == RST_OK) {
        snprintf(err, errlen, "cannot write %s: %s", temp, strerror(errno));
        rc = RST_EIO;
    }
    return rc;
}

int train_output_stage_json(train_output *o, const char *name, json_t *j, char *err, size_t errlen)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    if (!s) {
        snprintf(err, errlen, "cannot encode %s", name);
        return RST_EIO;
    }
    size_t n = strlen(s);
    char *t = xrealloc(s, n + 2);
    t[n] = '\n';
    t[n + 1] = '\0';
    int rc = train_output_stage(o, name, t, n + 1, err, errlen);
    free(t);
    return rc;
}

static void release(train_output *o)
{
    for (int i = 0; i < o->n; i++) {
        free(o->final[i]);
        free(o->temp[i]);
    }
    free(o->dir);
    free(o);
}

int train_output_commit(train_output *o, char *err, size_t errlen)
{
    int rc = RST_OK;
    for (int i = 0; i < o->n; i++) {
        if (rc == RST_OK && rename(o->temp[i], o->final[i])) {
            snprintf(err, errlen, "cannot rename %s: %s", o->temp[i], strerror(errno));
            rc = RST_EIO;
        }
        if (rc != RST_OK)
            unlink(o->temp[i]);
    }
    int fd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    release(o);
    return rc;
}

void train_output_abort(train_output *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++)
        unlink(o->temp[i]);
    release(o);
}
