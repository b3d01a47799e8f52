/* The reactions to a ready dataset version (datasets/version_ready.h). */
#include "datasets/version_ready.h"

static const version_ready_reaction *reactions;
static size_t nreactions;

void version_ready_subscribe(const version_ready_reaction *list, size_t n)
{
    reactions = list;
    nreactions = n;
}

ops_result version_ready_emit(ops_ctx *ctx, const version_ready *v)
{
    ops_result r = OPS_DONE;
    for (size_t i = 0; i < nreactions; i++) {
        if (r != OPS_DONE && !reactions[i].always)
            continue;
        ops_result rr = reactions[i].react(ctx, v);
        if (rr != OPS_DONE)
            r = rr;
    }
    return r;
}
