/* Tests of the pure diff (desired_diff_compute), for what the autoscaler needs of apply: with
 * autoscale the stored count is kept (only brought into a changed min..max), a count of 0 set
 * by hand stays, a template change keeps it too, and without autoscale the file's replicas win. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "desired/desired.h"

static struct spec_app parse(const char *text)
{
    struct spec_app app;
    struct spec_diags diags = {0};
    struct orch_error err = {0};
    if (spec_parse(text, strlen(text), NULL, &app, &diags, &err) != 0)
        fail_msg("parse: %s", err.msg);
    return app;
}

#define BASE "app: a\nservices:\n  web:\n    image: orch-demo:1\n    replicas: 3\n"

/* The diff of `applied` over a store that holds `stored` with `count` replicas. */
static struct desired_change diff_one(const char *stored, int count, const char *applied,
                                      struct desired_diff *d)
{
    struct spec_app old = parse(stored), now = parse(applied);
    char hash[65];
    spec_template_hash(&old.services[0], hash);
    char *tmpl = spec_template_canonical(&old.services[0]);
    char *json = spec_service_to_json(&old.services[0]);
    struct desired_current cur = {.service = "web",
                                  .revision = 4,
                                  .hash = hash,
                                  .template_json = tmpl,
                                  .image = "orch-demo:1",
                                  .replicas = count,
                                  .spec_json = json};
    struct orch_error err = {0};
    assert_int_equal(desired_diff_compute(&now, &cur, NULL, 1, false, d, &err), 0);
    assert_int_equal(d->n, 1);
    struct desired_change c = d->v[0];
    c.spec = NULL; /* borrowed from `now`, freed below */
    free(tmpl);
    free(json);
    spec_app_free(&old);
    spec_app_free(&now);
    return c;
}

static void test_autoscale_keeps_count(void **state)
{
    (void)state;
    static const struct {
        const char *stored;
        int count;
        const char *applied;
        enum desired_change_kind kind;
        int to;
        bool changed; /* autoscale_changed */
    } cases[] = {
        /* the same file: the autoscaler's 5 stays */
        {BASE "    autoscale: {min: 2, max: 6, cpu: 50}\n", 5,
         BASE "    autoscale: {min: 2, max: 6, cpu: 50}\n", DESIRED_UNCHANGED, 5, false},
        /* a lower max brings it down, a higher min up */
        {BASE "    autoscale: {min: 2, max: 6, cpu: 50}\n", 5,
         BASE "    autoscale: {min: 2, max: 4, cpu: 50}\n", DESIRED_SCALE, 4, false},
        {BASE "    autoscale: {min: 2, max: 6, cpu: 50}\n", 2,
         BASE "    autoscale: {min: 3, max: 6, cpu: 50}\n", DESIRED_SCALE, 3, false},
        /* another target or delay: stored, no scaling, no revision */
        {BASE "    autoscale: {min: 2, max: 6, cpu: 50}\n", 5,
         BASE "    autoscale: {min: 2, max: 6, cpu: 50, scale_down_delay: 10s}\n", DESIRED_SCALE, 5,
         true},
        /* scaled to 0 by hand: the autoscaler is off and apply does not turn it back on */
        {BASE "    autoscale: {min: 2, max: 6, cpu: 50}\n", 0,
         BASE "    autoscale: {min: 2, max: 6, cpu: 50}\n", DESIRED_UNCHANGED, 0, false},
        /* a new template keeps the autoscaler's count too */
        {BASE "    autoscale: {min: 2, max: 6, cpu: 50}\n", 5,
         BASE "    env: {V: \"2\"}\n    autoscale: {min: 2, max: 6, cpu: 50}\n", DESIRED_REVISION,
         5, false},
        /* autoscale added to a running service: clamped into its range */
        {BASE, 9, BASE "    autoscale: {min: 2, max: 6, cpu: 50}\n", DESIRED_SCALE, 6, false},
        /* without autoscale the file's count wins */
        {BASE "    autoscale: {min: 2, max: 6, cpu: 50}\n", 5, BASE, DESIRED_SCALE, 3, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct desired_diff d;
        struct desired_change c = diff_one(cases[i].stored, cases[i].count, cases[i].applied, &d);
        if (c.kind != cases[i].kind || c.to_replicas != cases[i].to ||
            c.autoscale_changed != cases[i].changed)
            fail_msg("case %zu: kind %d to %d changed %d, want %d %d %d", i, c.kind, c.to_replicas,
                     c.autoscale_changed, cases[i].kind, cases[i].to, cases[i].changed);
        assert_int_equal(c.from_replicas, cases[i].count);
        desired_diff_free(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_autoscale_keeps_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
