/* TLS cannot be turned off for a host that is not loopback: qfs-registry and qfs-scanner-poller
 * refuse a plain-http Qualys gateway on another host, at --check-config and at start, naming
 * QUALYS_GATEWAY_URL; and every request the http module makes verifies the peer certificate and
 * the host name. The proof is behavioural: two local HTTPS servers with self-signed certificates
 * (one for 127.0.0.1, one for another name) are refused by plain requests, by requests through a
 * prepare hook, by the SigV4-signing AWS client and by the Qualys client; trusting the first
 * certificate makes the same request succeed, and trusting the second still fails on the name.
 * The servers count what reached them: no refused handshake delivered a request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <uv.h>

#include "qfs/aws.h"
#include "qfs/http.h"
#include "qfs/log.h"
#include "qfs/qualys.h"
#include "testlib.h"

struct env {
    char *dir;
    char good_cert[600], other_cert[600];
    struct qfs_test_proc *good_srv, *other_srv;
    int good_port, other_port;
};

static struct env *E;

static const char server_js[] =
    "'use strict';\n"
    "// A tiny HTTPS server: answers every request with what it received and counts them.\n"
    "const https = require('https');\n"
    "const fs = require('fs');\n"
    "const [cert, key] = process.argv.slice(2);\n"
    "let count = 0;\n"
    "const s = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {\n"
    "  let n = 0;\n"
    "  req.on('data', (d) => { n += d.length; });\n"
    "  req.on('end', () => {\n"
    "    if (req.url !== '/count') count++;\n"
    "    const body = JSON.stringify({ count, method: req.method, url: req.url, bytes: n });\n"
    "    res.writeHead(200, { 'content-type': 'application/json' });\n"
    "    res.end(body);\n"
    "  });\n"
    "});\n"
    "s.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: s.address().port })));\n";

/* A self-signed certificate and key in dir: <name>.pem, <name>.key, valid for san. */
static void make_cert(const char *dir, const char *name, const char *cn, const char *san)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout '%s/%s.key' -out '%s/%s.pem' "
             "-subj '/CN=%s' -addext 'subjectAltName=%s' >/dev/null 2>&1",
             dir, name, dir, name, cn, san);
    if (system(cmd) != 0) fail_msg("openssl could not make a certificate: %s", cmd);
}

static int start_server(struct qfs_test_proc **proc, const char *name)
{
    char script[600], cert[600], key[600], log[600];
    snprintf(script, sizeof(script), "%s/server.js", E->dir);
    snprintf(cert, sizeof(cert), "%s/%s.pem", E->dir, name);
    snprintf(key, sizeof(key), "%s/%s.key", E->dir, name);
    snprintf(log, sizeof(log), "%s/%s.log", E->dir, name);
    const char *args[] = {cert, key, NULL};
    return qfs_test_node_start(proc, name, script, args, log);
}

static int group_setup(void **state)
{
    E = calloc(1, sizeof(*E));
    E->dir = qfs_test_tmpdir("tls");
    make_cert(E->dir, "good", "127.0.0.1", "IP:127.0.0.1,DNS:localhost");
    make_cert(E->dir, "other", "other.example", "DNS:other.example");
    snprintf(E->good_cert, sizeof(E->good_cert), "%s/good.pem", E->dir);
    snprintf(E->other_cert, sizeof(E->other_cert), "%s/other.pem", E->dir);
    char script[600];
    snprintf(script, sizeof(script), "%s/server.js", E->dir);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fputs(server_js, f);
    fclose(f);
    E->good_port = start_server(&E->good_srv, "good");
    E->other_port = start_server(&E->other_srv, "other");
    return 0;
}

static int group_teardown(void **state)
{
    qfs_test_proc_stop(E->good_srv);
    qfs_test_proc_stop(E->other_srv);
    qfs_test_rmrf(E->dir);
    free(E->dir);
    free(E);
    return 0;
}

/* ---- the gateway setting ------------------------------------------------------------------- */

struct run {
    int status;   /* exit code, -1 when it did not exit in time */
    char *out;    /* stdout and stderr, caller frees */
};

/* Runs qfs-<service> (with --check-config when check) with the given gateway and a static token,
 * everything else at its default; NATS points nowhere, so only the configuration is exercised. */
static struct run run_service(const char *service, const char *gateway, bool check)
{
    static int seq;
    char bin[600], log[700], gw[600], run_dir[600];
    snprintf(bin, sizeof(bin), "%s/qfs-%s", qfs_test_env("QFS_BIN_DIR", "build/bin"), service);
    snprintf(log, sizeof(log), "%s/run-%d.log", E->dir, ++seq);
    snprintf(gw, sizeof(gw), "QUALYS_GATEWAY_URL=%s", gateway);
    snprintf(run_dir, sizeof(run_dir), "QFS_RUN_DIR=%s", E->dir);
    const char *env[] = {gw, run_dir, "QUALYS_API_TOKEN=tls-test-token", "QUALYS_POD=", "QUALYS_USERNAME=",
                         "QUALYS_PASSWORD=", "QFS_QUALYS_SECRET_ARN=", "QFS_NATS_URL=nats://127.0.0.1:1",
                         "AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=AKIATLSTEST000000001",
                         "AWS_SECRET_ACCESS_KEY=tls-test-secret", NULL};
    const char *argv[] = {bin, check ? "--check-config" : NULL, NULL};
    struct qfs_test_proc *p = qfs_test_spawn(service, argv, env, log, false);
    struct run r = {-1, NULL};
    int st = 0;
    if (qfs_test_proc_wait(p, 15000, &st)) r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    qfs_test_proc_stop(p);
    r.out = qfs_test_read_file(log, NULL);
    if (!r.out) r.out = strdup("");
    return r;
}

static void test_plain_http_gateway_to_another_host_is_refused(void **state)
{
    static const char *const services[] = {"registry", "scanner-poller"};
    static const char *const refused[] = {
        "http://example.com", "http://gateway.qg2.apps.qualys.com", "HTTP://EXAMPLE.COM/csapi",
        "http://127.0.0.1.example.com", "http://localhost.example.com:8080", "http://10.0.0.1:8080",
    };
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
            for (int check = 1; check >= 0; check--) {
                struct run r = run_service(services[s], refused[i], check);
                if (r.status != 2 || !strstr(r.out, "QUALYS_GATEWAY_URL: must be an https:// URL"))
                    fail_msg("qfs-%s %s with %s: exit %d, output:\n%s", services[s],
                             check ? "--check-config" : "(start)", refused[i], r.status, r.out);
                /* Refused before anything runs: no effective configuration, no connection. */
                assert_null(strstr(r.out, "QUALYS_GATEWAY_URL=http"));
                free(r.out);
            }
        }
        /* The controls: TLS to any host, and plain http to loopback (the simulators). */
        static const char *const accepted[] = {"https://example.com", "http://127.0.0.1:8080", "http://[::1]:1"};
        for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
            struct run r = run_service(services[s], accepted[i], true);
            if (r.status != 0) fail_msg("qfs-%s --check-config with %s: exit %d:\n%s", services[s],
                                        accepted[i], r.status, r.out);
            free(r.out);
        }
    }
}

/* ---- every request verifies ---------------------------------------------------------------- */

struct outcome {
    bool done;
    qfs_status status;
    long code;
    char error[256];
    char body[512];
};

static void on_done(const struct qfs_http_response *r, void *arg)
{
    struct outcome *o = arg;
    o->done = true;
    o->status = r->status;
    o->code = r->code;
    snprintf(o->error, sizeof(o->error), "%s", r->error ? r->error : "");
    snprintf(o->body, sizeof(o->body), "%s", r->body);
}

/* What the prepare hook saw and does. */
struct hook {
    const char *cainfo; /* trust this certificate (the positive control), or NULL */
    int calls;
    char url[256];
};

static qfs_status prepare(CURL *easy, struct curl_slist **headers, void *arg)
{
    struct hook *h = arg;
    h->calls++;
    char *url = NULL;
    if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url)
        snprintf(h->url, sizeof(h->url), "%s", url);
    struct curl_slist *n = curl_slist_append(*headers, "X-Tls-Test: 1");
    if (!n) return QFS_INTERNAL;
    *headers = n;
    if (h->cainfo) curl_easy_setopt(easy, CURLOPT_CAINFO, h->cainfo);
    return QFS_OK;
}

/* One request over a fresh client, run to completion. */
static struct outcome request(const char *method, int port, const char *body, struct hook *hook)
{
    uv_loop_t loop;
    struct qfs_http *http;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(qfs_http_new(&loop, NULL, &http), QFS_OK);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/probe", port);
    struct qfs_http_request req = {
        .method = method, .url = url, .body = body, .body_len = body ? strlen(body) : 0,
        .timeout_ms = 10000, .max_attempts = 1,
        .prepare = hook ? prepare : NULL, .hook_arg = hook,
    };
    struct outcome o = {0};
    assert_int_equal(qfs_http_request(http, &req, on_done, &o), QFS_OK);
    assert_true(qfs_loop_run_until_flag(&loop, &o.done, 60000));
    qfs_http_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return o;
}

/* Requests that reached the server (its own /count request aside). */
static int server_count(int port, const char *cert)
{
    struct hook h = {.cainfo = cert};
    uv_loop_t loop;
    struct qfs_http *http;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(qfs_http_new(&loop, NULL, &http), QFS_OK);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/count", port);
    struct qfs_http_request req = {.url = url, .max_attempts = 1, .prepare = prepare, .hook_arg = &h};
    struct outcome o = {0};
    assert_int_equal(qfs_http_request(http, &req, on_done, &o), QFS_OK);
    assert_true(qfs_loop_run_until_flag(&loop, &o.done, 60000));
    qfs_http_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    if (o.status != QFS_OK) return -1;
    cJSON *j = cJSON_Parse(o.body);
    int n = j ? cJSON_GetObjectItem(j, "count")->valueint : -1;
    cJSON_Delete(j);
    return n;
}

static void assert_refused(const struct outcome *o, const char *what)
{
    if (o->status == QFS_OK || o->code != 0)
        fail_msg("%s: got %s, HTTP %ld (%s)", what, qfs_status_str(o->status), o->code, o->error);
    /* curl's own words for a failed verification. */
    if (!strstr(o->error, "certificate") && !strstr(o->error, "SSL"))
        fail_msg("%s: refused, but not for TLS: %s", what, o->error);
}

static void test_every_request_verifies_peer_and_host(void **state)
{
    /* Plain requests, GET and POST: the self-signed certificate is refused. */
    struct outcome o = request("GET", E->good_port, NULL, NULL);
    assert_refused(&o, "GET without trust");
    o = request("POST", E->good_port, "{\"secret\":\"must not be sent\"}", NULL);
    assert_refused(&o, "POST without trust");

    /* Through a prepare hook (as the AWS client signs): still verified. The hook sees the handle
     * fully set up for the https URL. */
    struct hook h = {0};
    o = request("POST", E->good_port, "{}", &h);
    assert_refused(&o, "POST through a prepare hook");
    assert_int_equal(h.calls, 1);
    char want[128];
    snprintf(want, sizeof(want), "https://127.0.0.1:%d/probe", E->good_port);
    assert_string_equal(h.url, want);
    assert_int_equal(server_count(E->good_port, E->good_cert), 0);

    /* The control: trusting the certificate is all it takes, so verification is what refused. */
    h = (struct hook){.cainfo = E->good_cert};
    o = request("GET", E->good_port, NULL, &h);
    if (o.status != QFS_OK || o.code != 200) fail_msg("trusted GET: %s %ld %s", qfs_status_str(o.status), o.code, o.error);
    assert_int_equal(server_count(E->good_port, E->good_cert), 1);

    /* A trusted certificate for another name: the host name check refuses it. */
    h = (struct hook){.cainfo = E->other_cert};
    o = request("GET", E->other_port, NULL, &h);
    assert_refused(&o, "trusted certificate of another host");
    assert_int_equal(server_count(E->other_port, E->other_cert), -1); /* not even /count gets in */
}

static const char *env_of(const char *name, void *arg)
{
    const char *const *kv = arg;
    size_t n = strlen(name);
    for (size_t i = 0; kv[i]; i++)
        if (strncmp(kv[i], name, n) == 0 && kv[i][n] == '=') return kv[i] + n + 1;
    return NULL;
}

/* Both of two flags set (arg: bool *[2]). */
static bool both_done(void *arg)
{
    bool **f = arg;
    return *f[0] && *f[1];
}

struct aws_outcome {
    bool done;
    qfs_status status;
    long code;
};

static void on_aws(const struct qfs_aws_response *r, void *arg)
{
    struct aws_outcome *o = arg;
    o->done = true;
    o->status = r->status;
    o->code = r->http_code;
}

static void on_qualys(const struct qfs_qualys_response *r, void *arg)
{
    struct aws_outcome *o = arg;
    o->done = true;
    o->status = r->status;
    o->code = r->http_code;
}

/* The clients built on the http module: a SigV4-signed AWS call and a Qualys call with a bearer
 * token, both to the local HTTPS server, both refused before any byte of the request is sent. */
static void test_aws_and_qualys_clients_verify(void **state)
{
    int before = server_count(E->good_port, E->good_cert);
    assert_true(before >= 0);
    uv_loop_t loop;
    struct qfs_http *http;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(qfs_http_new(&loop, NULL, &http), QFS_OK);

    char endpoint[128];
    snprintf(endpoint, sizeof(endpoint), "AWS_ENDPOINT_URL=https://127.0.0.1:%d", E->good_port);
    const char *kv[] = {endpoint, "AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=AKIATLSTEST000000001",
                        "AWS_SECRET_ACCESS_KEY=tls-test-secret-key", "AWS_SESSION_TOKEN=tls-test-session-token",
                        NULL};
    struct qfs_aws_options ao = {.env = env_of, .env_arg = (void *)kv, .max_attempts = 1};
    struct qfs_aws *aws;
    assert_int_equal(qfs_aws_new(&loop, http, &ao, &aws), QFS_OK);
    static const char body[] = "{\"SecretId\":\"qfs/qualys\"}";
    struct qfs_aws_call c = {.service = QFS_AWS_SECRETS_MANAGER, .protocol = QFS_AWS_JSON_1_1,
                             .target = "secretsmanager.GetSecretValue", .body = body,
                             .body_len = sizeof(body) - 1, .timeout_ms = 10000, .max_attempts = 1};
    struct aws_outcome a = {0};
    assert_int_equal(qfs_aws_call(aws, &c, on_aws, &a), QFS_OK);

    char gateway[128];
    snprintf(gateway, sizeof(gateway), "https://127.0.0.1:%d", E->good_port);
    struct qfs_qualys_options qo = {.gateway_url = gateway, .api_token = "tls-test-bearer-token",
                                    .max_attempts = 1, .timeout_ms = 10000};
    struct qfs_qualys *q;
    assert_int_equal(qfs_qualys_new(&loop, http, &qo, &q), QFS_OK);
    struct aws_outcome b = {0};
    assert_int_equal(qfs_qualys_aws_base(q, on_qualys, &b), QFS_OK);

    assert_true(qfs_loop_run_until(&loop, both_done, (bool *[]){&a.done, &b.done}, 60000));
    qfs_qualys_free(q);
    qfs_aws_free(aws);
    qfs_http_free(http);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    qfs_log_clear_secrets();

    if (a.status == QFS_OK || a.code != 0) fail_msg("AWS call: %s, HTTP %ld", qfs_status_str(a.status), a.code);
    if (b.status == QFS_OK || b.code != 0) fail_msg("Qualys call: %s, HTTP %ld", qfs_status_str(b.status), b.code);
    /* Neither the signed request nor the bearer token reached the server. */
    assert_int_equal(server_count(E->good_port, E->good_cert), before);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_http_gateway_to_another_host_is_refused),
        cmocka_unit_test(test_every_request_verifies_peer_and_host),
        cmocka_unit_test(test_aws_and_qualys_clients_verify),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
