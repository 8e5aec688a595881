/* Tests of the operations that need no engine: the pure decisions (undo target, wait outcome,
 * exit codes) as tables, and resolution, who drives, waiting and the record-only verbs
 * (ORCH_NO_CONVERGE=1) against a store in a scratch folder. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/ops_internal.h"
#include "ops/ops_json.h"

/* ---- scratch state dirs ---- */

static char *scratch_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *p = orch_xasprintf("%s/orch-ops-test.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(p) == NULL)
        abort();
    return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Notes of one operation, kept as "KIND:text" lines. */
struct seen {
    struct orch_strv v;
};

static void note_keep(void *arg, const struct ops_note *n)
{
    static const char *const kinds[] = {"info",    "progress", "progress_end", "message",
                                        "skipped", "recorded", "converged"};
    struct seen *s = arg;
    char *line = n->kind == OPS_NOTE_SKIPPED
                     ? orch_xasprintf("skipped:%s/%s", n->app, n->service)
                     : orch_xasprintf("%s:%s", kinds[n->kind], n->text ? n->text : "");
    orch_strv_push(&s->v, line);
    free(line);
}

static struct ops_ctx ctx_for(const char *dir, struct seen *seen)
{
    return (struct ops_ctx){
        .state_dir = dir, .actor = "orch test", .note = note_keep, .note_arg = seen};
}

static void put_service(struct store *s, const char *app, const char *name, int64_t revision)
{
    struct orch_error err = {0};
    assert_int_equal(store_app_put(s, app, "", 1000, &err), 0);
    struct store_service row = {.app = (char *)app,
                                .name = (char *)name,
                                .revision = revision,
                                .replicas = 1,
                                .spec_json = "{}",
                                .created_ms = 1000,
                                .updated_ms = 1000};
    assert_int_equal(store_service_put(s, &row, &err), 0);
}

/* ---- pure decisions ---- */

static void test_exit_codes(void **state)
{
    assert_int_equal(ops_outcome_exit("converged"), ORCH_EXIT_OK);
    assert_int_equal(ops_outcome_exit("rolled_back"), ORCH_EXIT_ROLLED_BACK);
    assert_int_equal(ops_outcome_exit("timeout"), ORCH_EXIT_TIMEOUT);
    assert_int_equal(ops_outcome_exit("failed"), ORCH_EXIT_FAILED);
    assert_int_equal(ops_outcome_exit(NULL), ORCH_EXIT_FAILED);
    assert_int_equal(ops_rollout_exit(STORE_ROLLOUT_COMPLETE), ORCH_EXIT_OK);
    assert_int_equal(ops_rollout_exit(STORE_ROLLOUT_ROLLED_BACK), ORCH_EXIT_ROLLED_BACK);
    assert_int_equal(ops_rollout_exit(STORE_ROLLOUT_FAILED), ORCH_EXIT_FAILED);
    assert_int_equal(ops_rollout_exit(STORE_ROLLOUT_PROGRESSING), ORCH_EXIT_TIMEOUT);
    struct orch_error err = {0};
    assert_int_equal(ops_error_exit(&err), ORCH_EXIT_FAILED); /* a bug never looks like success */
    assert_string_equal(ops_error_text(&err), orch_errc_name(ORCH_E_OK));
    orch_fail(&err, ORCH_E_ENV, 0, "no engine");
    assert_int_equal(ops_error_exit(&err), ORCH_EXIT_ENV);
    assert_string_equal(ops_error_text(&err), "no engine");
    orch_fail(&err, ORCH_E_NOTFOUND, 0, "x");
    assert_int_equal(ops_error_exit(&err), ORCH_EXIT_INVALID);
}

static void test_undo_target(void **state)
{
    /* newest first, as the store lists them */
    const struct ops_revision v[] = {
        {.number = 5, .state = "pending", .was_healthy = false},
        {.number = 4, .state = "failed", .was_healthy = true},
        {.number = 3, .state = "active", .was_healthy = true},
        {.number = 2, .state = "superseded", .was_healthy = false},
        {.number = 1, .state = "superseded", .was_healthy = true},
    };
    const struct {
        int64_t current, wanted;
        int want; /* index, or -errc */
        const char *msg;
    } rows[] = {
        {5, 0, 2, NULL}, /* newest earlier good: 3 (4 failed) */
        {3, 0, 4, NULL}, /* current skipped: 1 (2 never ran fully) */
        {1, 0, 2, NULL}, /* the newest good other than current: 3 */
        {5, 2, 3, NULL}, /* --to-revision picks even one that never ran fully */
        {5, 4, 1, NULL}, /* or one that failed (the CLI warns) */
        {3, 3, -ORCH_E_INVALID, "a/web is at revision 3 already"},
        {3, 9, -ORCH_E_NOTFOUND, "a/web has no revision 9 (see orch rollout history)"},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(rows); i++) {
        struct orch_error err = {0};
        int got = ops_undo_target(v, ORCH_ARRAY_LEN(v), rows[i].current, rows[i].wanted, "a", "web",
                                  &err);
        assert_int_equal(got, rows[i].want);
        if (rows[i].msg)
            assert_string_equal(err.msg, rows[i].msg);
    }
    /* only the current one was ever good */
    const struct ops_revision one[] = {{.number = 1, .state = "active", .was_healthy = true}};
    struct orch_error err = {0};
    assert_int_equal(ops_undo_target(one, 1, 1, 0, "a", "web", &err), -ORCH_E_NOTFOUND);
    assert_string_equal(err.msg, "a/web has no earlier good revision to go back to");
}

static void test_wait_decide(void **state)
{
    const struct ops_wait_target ours = {
        .app = "a", .service = "w", .revision = 2, .rollout_id = 7};
    const struct ops_wait_target none = {.app = "a", .service = "w", .revision = 2};
    const struct {
        const char *name;
        const struct ops_wait_target *t;
        struct ops_wait_view v;
        int want;
        bool say;
    } rows[] = {
        {"complete",
         &ours,
         {.have_rollout = true, .rollout_id = 7, .rollout_state = STORE_ROLLOUT_COMPLETE},
         0,
         false},
        {"failed",
         &ours,
         {.have_rollout = true, .rollout_id = 7, .rollout_state = STORE_ROLLOUT_FAILED},
         5,
         true},
        {"rolled back, old revision not yet serving",
         &ours,
         {.have_rollout = true,
          .rollout_id = 7,
          .rollout_state = STORE_ROLLOUT_ROLLED_BACK,
          .have_status = true,
          .converged = false,
          .status_revision = 1},
         -1,
         false},
        {"rolled back and serving",
         &ours,
         {.have_rollout = true,
          .rollout_id = 7,
          .rollout_state = STORE_ROLLOUT_ROLLED_BACK,
          .have_status = true,
          .converged = true,
          .status_revision = 1},
         1,
         true},
        {"progressing",
         &ours,
         {.have_rollout = true, .rollout_id = 7, .rollout_state = STORE_ROLLOUT_PROGRESSING},
         -1,
         false},
        {"superseded",
         &ours,
         {.have_rollout = true, .rollout_id = 8, .rollout_state = STORE_ROLLOUT_PROGRESSING},
         0,
         false},
        {"deleted meanwhile",
         &ours,
         {.have_rollout = true,
          .rollout_id = 7,
          .rollout_state = STORE_ROLLOUT_FAILED,
          .gone = true},
         0,
         true},
        {"no rollout, converged since",
         &none,
         {.have_status = true, .converged = true, .status_revision = 2, .observed_ms = 100},
         0,
         false},
        {"no rollout, status older than the change",
         &none,
         {.have_status = true, .converged = true, .status_revision = 2, .observed_ms = 99},
         -1,
         false},
        {"no rollout, other revision",
         &none,
         {.have_status = true, .converged = true, .status_revision = 1, .observed_ms = 100},
         -1,
         false},
        {"no rollout, no status yet", &none, {0}, -1, false},
        {"published ports not reported since the change",
         &none,
         {.have_status = true,
          .converged = true,
          .status_revision = 2,
          .observed_ms = 100,
          .publishes = true},
         -1,
         false},
        {"published ports reported",
         &none,
         {.have_status = true,
          .converged = true,
          .status_revision = 2,
          .observed_ms = 100,
          .publishes = true,
          .published_reported = true},
         0,
         false},
        {"a published port is taken",
         &ours,
         {.have_rollout = true,
          .rollout_id = 7,
          .rollout_state = STORE_ROLLOUT_PROGRESSING,
          .publishes = true,
          .published_reported = true,
          .published_error = true},
         3,
         false},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(rows); i++) {
        bool say = !rows[i].say;
        int got = ops_wait_decide(rows[i].t, &rows[i].v, 100, &say);
        if (got != rows[i].want || say != rows[i].say)
            fail_msg("%s: got %d (say %d), want %d (say %d)", rows[i].name, got, say, rows[i].want,
                     rows[i].say);
    }
}

/* ---- against a store ---- */

static void test_resolve(void **state)
{
    char *dir = scratch_dir();
    struct seen seen = {0};
    struct ops_ctx ctx = ctx_for(dir, &seen);
    struct orch_error err = {0};
    char *app = NULL, *svc = NULL;
    /* no state yet */
    assert_int_equal(ops_service_resolve(&ctx, "web", &app, &svc, &err), -ORCH_E_NOTFOUND);
    assert_string_equal(err.msg, "no service 'web'");
    assert_int_equal(ops_service_resolve(&ctx, "a1/web", &app, &svc, &err), -ORCH_E_NOTFOUND);
    assert_string_equal(err.msg, "no service a1/web");

    struct store *s = NULL;
    assert_int_equal(store_open(dir, &s, &err), 0);
    put_service(s, "a1", "web", 1);
    put_service(s, "a2", "web", 1);
    put_service(s, "a1", "db", 1);
    store_close(s);

    assert_int_equal(ops_service_resolve(&ctx, "db", &app, &svc, &err), 0);
    assert_string_equal(app, "a1");
    assert_string_equal(svc, "db");
    free(app);
    free(svc);
    assert_int_equal(ops_service_resolve(&ctx, "a2/web", &app, &svc, &err), 0);
    assert_string_equal(app, "a2");
    free(app);
    free(svc);
    const struct {
        const char *ref;
        int rc;
        const char *msg;
    } bad[] = {
        {"web", -ORCH_E_USAGE, "service 'web' is in 2 apps; name one of: a1/web, a2/web"},
        {"a9/web", -ORCH_E_NOTFOUND, "no service a9/web"},
        {"nope", -ORCH_E_NOTFOUND, "no service 'nope'"},
        {"Bad/x", -ORCH_E_USAGE, "'Bad/x' is not APP/SERVICE"},
        {"a_b", -ORCH_E_USAGE, "'a_b' is not a service name"},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(bad); i++) {
        orch_error_clear(&err);
        assert_int_equal(ops_service_resolve(&ctx, bad[i].ref, &app, &svc, &err), bad[i].rc);
        assert_string_equal(err.msg, bad[i].msg);
    }
    rm_rf(dir);
    free(dir);
}

static void test_who_drives(void **state)
{
    char *dir = scratch_dir();
    struct seen seen = {0};
    struct ops_ctx ctx = ctx_for(dir, &seen);
    long pid = -1;
    setenv("ORCH_NO_CONVERGE", "1", 1);
    assert_int_equal(ops_who_drives(&ctx, &pid), OPS_DRIVER_RECORD_ONLY);
    assert_int_equal(pid, 0);
    unsetenv("ORCH_NO_CONVERGE");
    assert_int_equal(ops_who_drives(&ctx, &pid), OPS_DRIVER_EMBEDDED);
    assert_int_equal(seen.v.n, 0); /* only a daemon is announced */
    /* the app lock: taken, released with its fd */
    struct orch_error err = {0};
    int fd = ops_app_lock(&ctx, dir, "a1", &err);
    assert_true(fd >= 0);
    close(fd);
    fd = ops_app_lock(&ctx, dir, "a1", &err);
    assert_true(fd >= 0);
    close(fd);
    orch_strv_free(&seen.v);
    rm_rf(dir);
    free(dir);
}

static void add_rollout(struct store *s, const char *app, const char *svc,
                        enum store_rollout_state st, const char *msg, int64_t *id)
{
    struct orch_error err = {0};
    struct store_rollout ro = {.app = (char *)app,
                               .service = (char *)svc,
                               .from_revision = 1,
                               .to_revision = 2,
                               .state = st,
                               .message = (char *)msg,
                               .started_ms = 1000,
                               .updated_ms = 1000};
    assert_int_equal(store_rollout_add(s, &ro, id, &err), 0);
}

static void test_wait(void **state)
{
    char *dir = scratch_dir();
    struct seen seen = {0};
    struct ops_ctx ctx = ctx_for(dir, &seen);
    struct orch_error err = {0};
    struct store *s = NULL;
    assert_int_equal(store_open(dir, &s, &err), 0);
    put_service(s, "a", "ok", 2);
    put_service(s, "a", "bad", 2);
    put_service(s, "a", "slow", 2);
    int64_t id_ok = 0, id_bad = 0, id_slow = 0;
    add_rollout(s, "a", "ok", STORE_ROLLOUT_COMPLETE, "", &id_ok);
    add_rollout(s, "a", "bad", STORE_ROLLOUT_FAILED, "revision 2 failed", &id_bad);
    add_rollout(s, "a", "slow", STORE_ROLLOUT_PROGRESSING, "", &id_slow);
    store_close(s);

    struct ops_wait_target t[] = {
        {.app = "a", .service = "ok", .revision = 2, .rollout_id = id_ok},
        {.app = "a", .service = "bad", .revision = 2, .rollout_id = id_bad},
    };
    assert_int_equal(ops_wait(&ctx, t, 1, 0, 0), ORCH_EXIT_OK);
    assert_int_equal(ops_wait(&ctx, t, 2, 0, 0), ORCH_EXIT_FAILED);
    assert_true(orch_strv_contains(&seen.v, "message:a/bad: revision 2 failed"));
    orch_strv_free(&seen.v);

    struct ops_wait_target slow = {
        .app = "a", .service = "slow", .revision = 2, .rollout_id = id_slow};
    assert_int_equal(ops_wait(&ctx, &slow, 1, 0, 300), ORCH_EXIT_TIMEOUT);
    assert_true(orch_strv_contains(
        &seen.v, "message:timed out waiting; the daemon goes on with the rollout"));
    orch_strv_free(&seen.v);
    /* a service deleted meanwhile is no longer waited for */
    struct ops_wait_target gone = {.app = "a", .service = "gone", .revision = 1};
    assert_int_equal(ops_wait(&ctx, &gone, 1, 0, 0), ORCH_EXIT_OK);
    orch_strv_free(&seen.v);
    rm_rf(dir);
    free(dir);
}

static void parse_spec(const char *text, struct spec_app *app)
{
    struct spec_parse_options opts = {.file = "t.yaml", .base_dir = "/"};
    struct spec_diags diags = {0};
    struct orch_error err = {0};
    assert_int_equal(spec_parse(text, strlen(text), &opts, app, &diags, &err), 0);
    spec_diags_free(&diags);
}

static const char spec_v1[] = "app: a\nservices:\n  web:\n    image: orch-demo:1\n"
                              "    replicas: 2\n  db:\n    image: orch-demo:1\n";

static void apply_text(const struct ops_ctx *ctx, const char *text, const char *image, bool dry,
                       struct ops_apply_result *res)
{
    struct spec_app app = {0};
    parse_spec(text, &app);
    const char *images[] = {image};
    struct ops_apply_req req = {.spec = &app,
                                .spec_path = "/t.yaml",
                                .images = images,
                                .n_images = image ? 1 : 0,
                                .dry_run = dry};
    ops_apply(ctx, &req, res);
    spec_app_free(&app);
}

static void test_apply_record_only(void **state)
{
    char *dir = scratch_dir();
    struct seen seen = {0};
    struct ops_ctx ctx = ctx_for(dir, &seen);
    setenv("ORCH_NO_CONVERGE", "1", 1);
    struct ops_apply_result res;

    apply_text(&ctx, spec_v1, NULL, true, &res); /* dry run, no state yet */
    assert_int_equal(res.exit_code, 1);
    assert_int_equal(res.diff.n, 2);
    assert_int_equal(res.diff.v[0].kind, OPS_CHANGE_CREATE);
    assert_false(res.recorded);
    ops_apply_result_free(&res);

    apply_text(&ctx, spec_v1, "web=BAD:x", false, &res);
    assert_int_equal(res.exit_code, ORCH_EXIT_INVALID);
    assert_int_equal(res.problems.n, 1);
    assert_string_equal(res.problems.v[0], "--image 'web=BAD:x': 'BAD:x' is not a valid image "
                                           "reference");
    ops_apply_result_free(&res);

    apply_text(&ctx, spec_v1, NULL, false, &res);
    assert_int_equal(res.exit_code, ORCH_EXIT_OK);
    assert_true(res.recorded);
    assert_int_equal(res.driver, OPS_DRIVER_RECORD_ONLY);
    assert_string_equal(res.outcome, "recorded");
    assert_true(orch_strv_contains(&seen.v, "recorded:"));
    _cleanup_free_ char *json = ops_apply_json(&res);
    assert_non_null(strstr(json, "\"outcome\": \"recorded\""));
    ops_apply_result_free(&res);

    apply_text(&ctx, spec_v1, "web=orch-demo:2", false, &res);
    assert_int_equal(res.diff.v[0].kind, OPS_CHANGE_REVISION);
    assert_int_equal(res.diff.v[0].to_revision, 2);
    assert_string_equal(res.diff.v[0].to_image, "orch-demo:2");
    ops_apply_result_free(&res);

    apply_text(&ctx, spec_v1, "web=orch-demo:2", true, &res); /* nothing would change */
    assert_int_equal(res.exit_code, 0);
    ops_apply_result_free(&res);
    orch_strv_free(&seen.v);
    unsetenv("ORCH_NO_CONVERGE");
    rm_rf(dir);
    free(dir);
}

static void test_scale_undo_delete_record_only(void **state)
{
    char *dir = scratch_dir();
    struct seen seen = {0};
    struct ops_ctx ctx = ctx_for(dir, &seen);
    setenv("ORCH_NO_CONVERGE", "1", 1);
    struct ops_apply_result ar;
    apply_text(&ctx, spec_v1, NULL, false, &ar);
    ops_apply_result_free(&ar);
    apply_text(&ctx, spec_v1, "web=orch-demo:2", false, &ar);
    ops_apply_result_free(&ar);

    const struct ops_scale_item items[] = {{"web", 3}, {"a/db", 0}};
    struct ops_scale_result sr;
    assert_int_equal(ops_scale(&ctx, items, 2, &sr), ORCH_EXIT_OK);
    assert_int_equal(sr.n, 2);
    assert_int_equal(sr.v[0].from, 2);
    assert_int_equal(sr.v[0].to, 3);
    assert_int_equal(sr.n_converged, 0);
    ops_scale_result_free(&sr);
    const struct ops_scale_item unknown[] = {{"web", 1}, {"nope", 1}};
    assert_int_equal(ops_scale(&ctx, unknown, 2, &sr), ORCH_EXIT_INVALID);
    assert_string_equal(sr.err.msg, "no service 'nope'");
    assert_int_equal(sr.n, 0); /* nothing was written */
    ops_scale_result_free(&sr);

    struct ops_undo_result ur;
    struct ops_undo_req req = {.ref = "web"};
    assert_int_equal(ops_rollout_undo(&ctx, &req, &ur), ORCH_EXIT_INVALID); /* never ran */
    ops_undo_result_free(&ur);
    req.to_revision = 1;
    assert_int_equal(ops_rollout_undo(&ctx, &req, &ur), ORCH_EXIT_OK);
    assert_int_equal(ur.from_revision, 2);
    assert_int_equal(ur.to_revision, 1);
    assert_string_equal(ur.image, "orch-demo:1");
    ops_undo_result_free(&ur);

    struct ops_history_result hr;
    assert_int_equal(ops_rollout_history(&ctx, "a/web", &hr), ORCH_EXIT_OK);
    assert_int_equal(hr.n, 2);
    assert_int_equal(hr.v[0].number, 2);
    _cleanup_free_ char *hj = ops_history_json(&hr);
    assert_non_null(strstr(hj, "\"revisions\""));
    ops_history_result_free(&hr);

    struct ops_get_result gr;
    assert_int_equal(ops_get(&ctx, &gr), ORCH_EXIT_OK);
    assert_int_equal(gr.n, 2);
    assert_string_equal(gr.v[1].service, "web");
    assert_int_equal(gr.v[1].revision, 1);
    assert_int_equal(gr.v[1].desired, 3);
    assert_string_equal(gr.v[1].rollout_state, "progressing");
    ops_get_result_free(&gr);

    struct spec_app app = {0};
    parse_spec("app: a\nservices:\n  db:\n    image: x\n  gone:\n    image: x\n", &app);
    struct ops_delete_req dreq = {.spec = &app};
    struct ops_delete_result dr;
    assert_int_equal(ops_delete(&ctx, &dreq, &dr), ORCH_EXIT_OK);
    assert_int_equal(dr.services.n, 1);
    assert_true(orch_strv_contains(&seen.v, "skipped:a/gone"));
    ops_delete_result_free(&dr);
    spec_app_free(&app);
    dreq = (struct ops_delete_req){.app = "a", .volumes = true};
    assert_int_equal(ops_delete(&ctx, &dreq, &dr), ORCH_EXIT_OK);
    assert_string_equal(dr.services.v[0], "web");
    ops_delete_result_free(&dr);
    /* recorded only: nothing removed yet, so both deletes show as in progress */
    assert_int_equal(ops_get(&ctx, &gr), ORCH_EXIT_OK);
    assert_int_equal(gr.n, 2);
    assert_string_equal(gr.v[0].service, "db");
    assert_string_equal(gr.v[0].rollout_state, "deleting");
    assert_string_equal(gr.v[1].service, "web");
    assert_string_equal(gr.v[1].rollout_state, "deleting");
    assert_int_equal(gr.v[1].desired, 0);
    _cleanup_free_ char *gj = ops_get_json(&gr);
    assert_non_null(strstr(gj, "\"state\": \"deleting\""));
    ops_get_result_free(&gr);
    dreq = (struct ops_delete_req){.app = "a"}; /* its delete is unfinished: this one takes it */
    assert_int_equal(ops_delete(&ctx, &dreq, &dr), ORCH_EXIT_OK);
    ops_delete_result_free(&dr);
    dreq = (struct ops_delete_req){.app = "nope"}; /* never known: nothing to delete */
    assert_int_equal(ops_delete(&ctx, &dreq, &dr), ORCH_EXIT_INVALID);
    assert_string_equal(dr.err.msg, "no app 'nope'");
    ops_delete_result_free(&dr);
    dreq = (struct ops_delete_req){.volumes = true, .n_refs = 0};
    assert_int_equal(ops_delete(&ctx, &dreq, &dr), ORCH_EXIT_INVALID);
    ops_delete_result_free(&dr);

    orch_strv_free(&seen.v);
    unsetenv("ORCH_NO_CONVERGE");
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_undo_target),
        cmocka_unit_test(test_wait_decide),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_who_drives),
        cmocka_unit_test(test_wait),
        cmocka_unit_test(test_apply_record_only),
        cmocka_unit_test(test_scale_undo_delete_record_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
