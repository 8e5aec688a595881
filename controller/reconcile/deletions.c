/* Deletes in progress (the store's deletions, docs/cli.md "delete"): a run loads those of its
 * app each pass and forgets each one once the engine shows it done: a service's when none of
 * its containers is left (or it was applied again), the whole app's once its network (and
 * volumes when asked) went in reconcile_run_finish. It removes nothing itself: the pass removes
 * the containers of services that are not desired, whether a delete is recorded or not. */
#include "reconcile_internal.h"

#include <string.h>

#include "base/log.h"

static void deletions_clear(struct reconcile_run *run)
{
    store_deletions_free(run->dels, run->n_dels);
    run->dels = NULL;
    run->n_dels = 0;
}

int recon_deletions_load(struct reconcile_run *run, struct orch_error *err)
{
    deletions_clear(run);
    return store_deletions_list(run->r->store, run->app, &run->dels, &run->n_dels, err);
}

bool recon_deleting_volumes(const struct reconcile_run *run)
{
    for (size_t i = 0; i < run->n_dels; i++)
        if (run->dels[i].service[0] == '\0' && run->dels[i].volumes)
            return true;
    return false;
}

static bool service_present(const struct reconcile_run *run, const char *name)
{
    for (size_t j = 0; j < run->n; j++)
        if (run->svcs[j].present && strcmp(run->svcs[j].name, name) == 0)
            return true;
    return false;
}

int recon_deletions_settle(struct reconcile_run *run, const struct docker_container_list *obs,
                           size_t n_present, struct orch_error *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < run->n_dels; i++) {
        const struct store_deletion *d = &run->dels[i];
        bool done;
        if (d->service[0] == '\0') {
            done = n_present > 0; /* applied again: the app is wanted after all */
        } else {
            done = service_present(run, d->service);
            size_t left = 0;
            for (size_t k = 0; k < obs->n; k++) {
                const char *svc = docker_kvs_get(&obs->v[k].labels, "orch.service");
                left += svc != NULL && strcmp(svc, d->service) == 0;
            }
            done = done || left == 0;
        }
        if (done)
            rc = store_deletion_remove(run->r->store, run->app, d->service, err);
    }
    return rc;
}

int recon_deletions_finish(struct reconcile_run *run, struct orch_error *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < run->n_dels; i++)
        rc = store_deletion_remove(run->r->store, run->app, run->dels[i].service, err);
    if (rc == 0)
        deletions_clear(run);
    return rc;
}

void recon_deletions_free(struct reconcile_run *run)
{
    deletions_clear(run);
}
