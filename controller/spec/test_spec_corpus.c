/* The invalid-spec corpus: every .yaml file in tests/fixtures/invalid must be refused with the
 * diagnostics that tests/fixtures/invalid/EXPECT lists (exact position, message substring),
 * and every file must be listed. Hostile inputs too big to commit are generated here. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/util.h"
#include "spec/spec.h"
#include "support/test_fixture.h"

#define CORPUS ORCH_SOURCE_DIR "/tests/fixtures/invalid"

struct expect {
    char name[128];
    int line;
    int column;
    char substr[256];
    bool seen_file;
};

static struct expect *load_expect(size_t *n)
{
    size_t len;
    char *text = test_fixture_read(CORPUS "/EXPECT", &len);
    assert_non_null(text);
    struct expect *v = NULL;
    *n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        v = orch_xrealloc(v, (*n + 1) * sizeof(*v));
        struct expect *e = &v[*n];
        memset(e, 0, sizeof(*e));
        int off = 0;
        if (sscanf(line, "%127s %d:%d %n", e->name, &e->line, &e->column, &off) != 3 || off == 0) {
            fail_msg("bad EXPECT line: %s", line);
        }
        snprintf(e->substr, sizeof(e->substr), "%s", line + off);
        assert_true(e->substr[0] != '\0');
        (*n)++;
    }
    free(text);
    return v;
}

static int strp_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parses text and returns its diagnostics; asserts the parse failed cleanly. */
static void parse_invalid(const char *name, const char *text, size_t len, struct spec_diags *d)
{
    struct spec_parse_options opts = {.file = name, .base_dir = "/srv/app"};
    struct spec_app app;
    struct orch_error err = {0};
    int rc = spec_parse(text, len, &opts, &app, d, &err);
    if (rc != -ORCH_E_INVALID)
        fail_msg("%s: expected -ORCH_E_INVALID, got %d", name, rc);
    assert_true(d->n > 0);
    assert_int_equal(app.services_len, 0);
    assert_null(app.services);
    assert_null(app.app);
    assert_int_equal(err.code, ORCH_E_INVALID);
    assert_non_null(strstr(err.msg, name));
}

static bool has_diag(const struct spec_diags *d, int line, int column, const char *substr)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].line == line && d->v[i].column == column &&
            strstr(d->v[i].message, substr) != NULL)
            return true;
    return false;
}

static void test_corpus(void **state)
{
    (void)state;
    size_t nexp;
    struct expect *exp = load_expect(&nexp);
    assert_true(nexp > 0);

    DIR *dir = opendir(CORPUS);
    assert_non_null(dir);
    struct orch_strv files = {0};
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 5 && strcmp(de->d_name + l - 5, ".yaml") == 0)
            orch_strv_push(&files, de->d_name);
    }
    closedir(dir);
    assert_true(files.n >= 35);
    qsort(files.v, files.n, sizeof(char *), strp_cmp);

    for (size_t i = 0; i < files.n; i++) {
        const char *name = files.v[i];
        char path[512];
        snprintf(path, sizeof(path), CORPUS "/%s", name);
        size_t len;
        char *text = test_fixture_read(path, &len);
        assert_non_null(text);
        struct spec_diags d;
        parse_invalid(name, text, len, &d);
        size_t listed = 0;
        for (size_t k = 0; k < nexp; k++) {
            if (strcmp(exp[k].name, name) != 0)
                continue;
            exp[k].seen_file = true;
            listed++;
            if (!has_diag(&d, exp[k].line, exp[k].column, exp[k].substr)) {
                char *all = spec_diags_format(&d, name);
                fail_msg("%s: no diagnostic at %d:%d containing '%s'; got:\n%s", name, exp[k].line,
                         exp[k].column, exp[k].substr, all);
            }
        }
        if (listed == 0)
            fail_msg("%s has no entry in EXPECT", name);
        /* Every diagnostic is one gcc-style line. */
        char *all = spec_diags_format(&d, name);
        size_t lines = 0;
        for (char *p = all; *p; p++)
            lines += *p == '\n';
        assert_int_equal(lines, d.n);
        free(all);
        spec_diags_free(&d);
        free(text);
    }
    for (size_t k = 0; k < nexp; k++)
        if (!exp[k].seen_file)
            fail_msg("EXPECT names '%s', which is not in the corpus", exp[k].name);
    orch_strv_free(&files);
    free(exp);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void expect_one(const char *name, const char *text, size_t len, int line, int column,
                       const char *substr)
{
    struct spec_diags d;
    double t0 = now_s();
    parse_invalid(name, text, len, &d);
    /* Hostile input must stay cheap: generous for sanitizer builds, far below any blow-up. */
    assert_true(now_s() - t0 < 5.0);
    if (!has_diag(&d, line, column, substr)) {
        char *all = spec_diags_format(&d, name);
        fail_msg("%s: no diagnostic at %d:%d containing '%s'; got:\n%s", name, line, column, substr,
                 all);
    }
    spec_diags_free(&d);
}

static void test_generated_too_large(void **state)
{
    (void)state;
    /* A valid spec padded with comments to more than 10 MB: refused before parsing. */
    struct orch_buf b = {0};
    orch_buf_puts(&b, "app: shop\nservices:\n  web:\n    image: nginx\n");
    while (b.len <= 10u << 20)
        orch_buf_puts(&b, "# padding padding padding padding padding padding padding padding\n");
    expect_one("big.yaml", b.data, b.len, 1, 1, "spec is too large");
    orch_buf_free(&b);

    /* One byte over the limit is refused; the limit itself is not (it parses, and fails only
     * for what it says). */
    char *over = orch_xmalloc(SPEC_MAX_INPUT + 1);
    memset(over, '\n', SPEC_MAX_INPUT + 1);
    expect_one("over.yaml", over, SPEC_MAX_INPUT + 1, 1, 1, "spec is too large");
    expect_one("limit.yaml", over, SPEC_MAX_INPUT, 1, 1, "empty spec");
    free(over);
}

static void test_generated_deep_nesting(void **state)
{
    (void)state;
    const int depth = 10000;
    static const char *const open[] = {"[", "{a: "};
    static const char *const close[] = {"]", "}"};
    for (int kind = 0; kind < 2; kind++) {
        struct orch_buf b = {0};
        orch_buf_puts(&b, "app: shop\nservices: ");
        for (int i = 0; i < depth; i++)
            orch_buf_puts(&b, open[kind]);
        for (int i = 0; i < depth; i++)
            orch_buf_puts(&b, close[kind]);
        orch_buf_putc(&b, '\n');
        /* The root mapping is level 1, so the 64th opener on line 2 is one too many. */
        int col = 11 + 63 * (int)strlen(open[kind]);
        expect_one("deep.yaml", b.data, b.len, 2, col, "nesting deeper than 64 levels");
        orch_buf_free(&b);
    }
}

static void test_generated_alias_chain(void **state)
{
    (void)state;
    /* Each anchor refers twice to the one before: 2^200 nodes if anything expanded it. */
    struct orch_buf b = {0};
    orch_buf_puts(&b, "chain:\n  - &a0 [x, x]\n");
    for (int i = 1; i < 200; i++)
        orch_buf_printf(&b, "  - &a%d [*a%d, *a%d]\n", i, i - 1, i - 1);
    orch_buf_puts(&b, "app: shop\nservices:\n  web:\n    image: nginx\n    command: *a199\n"
                      "    env: *a199\n  api: *a199\n");
    int line = 1 + 200 + 1; /* "chain:", the anchors, then "app:" */
    expect_one("chain.yaml", b.data, b.len, 1, 1, "unknown key 'chain'");
    /* command's items are the two aliases inside a199's list. */
    expect_one("chain.yaml", b.data, b.len, 201, 12, "services.web.command[0]: must be a scalar");
    expect_one("chain.yaml", b.data, b.len, line + 5, 10, "services.web.env: must be a mapping");
    expect_one("chain.yaml", b.data, b.len, line + 6, 8, "services.api: must be a mapping");
    orch_buf_free(&b);
}

static void test_generated_wide_aliases(void **state)
{
    (void)state;
    /* 5000 services sharing one service body with 100 env vars: the validator would visit
     * half a million nodes, so the alias budget stops it at the first service over it. */
    struct orch_buf b = {0};
    orch_buf_puts(&b, "app: shop\nservices:\n  s0: &s\n    image: nginx\n    env:\n");
    for (int i = 0; i < 100; i++)
        orch_buf_printf(&b, "      K%d: v\n", i);
    for (int i = 1; i < 5000; i++)
        orch_buf_printf(&b, "  s%d: *s\n", i);
    struct spec_diags d;
    parse_invalid("wide.yaml", b.data, b.len, &d);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.v[0].message, "alias expansion exceeds limit"));
    spec_diags_free(&d);
    orch_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_generated_too_large),
        cmocka_unit_test(test_generated_deep_nesting),
        cmocka_unit_test(test_generated_alias_chain),
        cmocka_unit_test(test_generated_wide_aliases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
