/* The testbed's orchestrator: fastmig-orchd in the initial namespaces,
 * serving https://127.0.0.1:7443 with a certificate of the testbed's CA,
 * reaching the agents through the core like fastmig does. Its files are
 * in FM_TESTBED_ORCH (removed by testbed down). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "orch/http.h"
#include "orch/orch.h"
#include "orch/store.h"
#include "pki/pki.h"
#include "testbed/testbed.h"

#define READY_TIMEOUT_MS 240000 /* reconciling waits up to 180 s for the agents (orch/runner.c) */

static int make_token(fm_error *e)
{
        const char *path = FM_TESTBED_ORCH "/token";
        if (fm_path_exists(path))
                return 0;
        fm_store *s = NULL;
        int r = fm_store_open(FM_TESTBED_ORCH "/orch.db", &s, e);
        if (r < 0)
                return r;
        char tok[2 * FM_HTTP_TOKEN_BYTES + 1];
        r = fm_http_token_create(s, FM_TESTBED_ORCH_CLIENT, true, tok, e);
        fm_store_close(s);
        if (r < 0)
                return r;
        r = fm_write_file(path, tok, strlen(tok), 0600);
        return r < 0 ? fm_err(e, -r, "writing %s: %s", path, strerror(-r)) : 0;
}

int fm_testbed_orch_start(const char *orchd_path, int per_host, fm_error *e)
{
        if (fm_path_exists(FM_TESTBED_ORCH "/pid"))
                return fm_err(e, EEXIST, "the testbed's orchestrator runs already (%s/pid)", FM_TESTBED_ORCH);
        int r = fm_mkdir_p(FM_TESTBED_ORCH, 0700);
        if (r < 0)
                return fm_err(e, -r, "creating %s: %s", FM_TESTBED_ORCH, strerror(-r));
        char crt[300];
        snprintf(crt, sizeof(crt), "%s/orch.crt", FM_TESTBED_PKI);
        if (!fm_path_exists(crt)) {
                const char *addr[] = {FM_TESTBED_ORCH_ADDR};
                if ((r = fm_pki_issue(FM_TESTBED_PKI, "orch", "operator", addr, 1, 30, e)) < 0)
                        return fm_err_wrap(e, "the orchestrator's certificate");
        }
        if ((r = make_token(e)) < 0)
                return fm_err_wrap(e, "the testbed's API token");
        int ready[2];
        if (pipe2(ready, O_CLOEXEC) < 0)
                return fm_err(e, errno, "pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
                return fm_err(e, errno, "fork: %s", strerror(errno));
        if (pid == 0) {
                setsid();
                int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
                int out = open(FM_TESTBED_ORCH "/orchd.out", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (nul < 0 || out < 0)
                        _exit(1);
                dup2(nul, 0);
                dup2(out, 1);
                dup2(out, 2);
                int w = fcntl(ready[1], F_DUPFD, 10); /* without O_CLOEXEC */
                char env[32], listen[40], ph[16];
                snprintf(env, sizeof(env), "FASTMIG_READY_FD=%d", w);
                putenv(env);
                snprintf(listen, sizeof(listen), "%s:%d", FM_TESTBED_ORCH_ADDR, FM_TESTBED_ORCH_PORT);
                snprintf(ph, sizeof(ph), "%d", per_host > 0 ? per_host : FM_ORCH_DEFAULT_PER_HOST);
                execl(orchd_path, orchd_path, "--fleet", FM_TESTBED_FLEET, "--db", FM_TESTBED_ORCH "/orch.db", "--listen",
                      listen, "--pki", FM_TESTBED_PKI, "--cert", "orch", "--log", FM_TESTBED_ORCH "/orch.log", "--per-host",
                      ph, (char *)NULL);
                dprintf(2, "exec %s: %s\n", orchd_path, strerror(errno));
                _exit(127);
        }
        fm_close(ready[1]);
        char pidtext[16];
        snprintf(pidtext, sizeof(pidtext), "%d\n", (int)pid);
        fm_write_file(FM_TESTBED_ORCH "/pid", pidtext, strlen(pidtext), 0600);
        struct pollfd p = {.fd = ready[0], .events = POLLIN};
        char c = 0;
        int n = poll(&p, 1, READY_TIMEOUT_MS) == 1 ? (int)read(ready[0], &c, 1) : 0;
        fm_close(ready[0]);
        if (n == 1)
                return 0;
        _cleanup_free_ char *out = NULL;
        int len = fm_read_file(FM_TESTBED_ORCH "/orchd.out", &out, 1 << 16);
        while (len > 0 && out[len - 1] == '\n')
                out[--len] = '\0';
        const char *last = len > 0 ? (strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out) : "no output";
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        unlink(FM_TESTBED_ORCH "/pid");
        return fm_err(e, EIO, "the orchestrator did not come up: %s", last);
}

int fm_testbed_orch_env(char *buf, size_t n, fm_error *e)
{
        _cleanup_free_ char *tok = NULL;
        if (!fm_path_exists(FM_TESTBED_ORCH "/pid") || fm_read_file(FM_TESTBED_ORCH "/token", &tok, 256) < 0)
                return fm_err(e, ENOENT, "the testbed has no orchestrator (`fastmig testbed up --orchestrator')");
        tok[strcspn(tok, "\n")] = '\0';
        snprintf(buf, n, "FASTMIG_API_URL=https://%s:%d\nFASTMIG_API_TOKEN=%s\nFASTMIG_API_CA=%s/ca.crt\n",
                 FM_TESTBED_ORCH_ADDR, FM_TESTBED_ORCH_PORT, tok, FM_TESTBED_PKI);
        return 0;
}

int fm_testbed_orch_setenv(fm_error *e)
{
        char env[1024];
        int r = fm_testbed_orch_env(env, sizeof(env), e);
        for (char *sv = NULL, *l = r == 0 ? strtok_r(env, "\n", &sv) : NULL; l; l = strtok_r(NULL, "\n", &sv)) {
                char *eq = strchr(l, '=');
                if (eq) {
                        *eq = '\0';
                        setenv(l, eq + 1, 1);
                }
        }
        return r;
}
