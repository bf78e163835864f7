#include "orch/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#include "proto/proto.h"

#define REPLY_MAX (8 << 20)

bool fm_api_client_from_env(fm_api_client *c, fm_error *e)
{
        const char *url = getenv("FASTMIG_API_URL"), *tok = getenv("FASTMIG_API_TOKEN"), *ca = getenv("FASTMIG_API_CA");
        if (!url || !*url)
                return false;
        memset(c, 0, sizeof(*c));
        if (strncmp(url, "https://", 8) || strlen(url) >= sizeof(c->url))
                return fm_err(e, EINVAL, "FASTMIG_API_URL is an https:// URL, not `%.64s'", url), true;
        if (!tok || !*tok)
                return fm_err(e, EINVAL, "FASTMIG_API_URL is set but FASTMIG_API_TOKEN is not"), true;
        if (strlen(tok) >= sizeof(c->token))
                return fm_err(e, EINVAL, "FASTMIG_API_TOKEN is longer than a token (%zu characters)", strlen(tok)), true;
        snprintf(c->url, sizeof(c->url), "%s", url);
        size_t n = strlen(c->url);
        while (n && c->url[n - 1] == '/')
                c->url[--n] = '\0';
        snprintf(c->token, sizeof(c->token), "%s", tok);
        snprintf(c->ca, sizeof(c->ca), "%s", ca && *ca ? ca : "");
        return true;
}

typedef struct buf {
        char *p;
        size_t n;
        bool over;
} buf;

static size_t collect(char *d, size_t s, size_t k, void *data)
{
        buf *b = data;
        size_t n = s * k;
        if (b->over || b->n + n > REPLY_MAX) {
                b->over = true;
                return 0;
        }
        char *np = realloc(b->p, b->n + n + 1);
        if (!np)
                return 0;
        b->p = np;
        memcpy(b->p + b->n, d, n);
        b->n += n;
        b->p[b->n] = '\0';
        return n;
}

int fm_api_call(const fm_api_client *c, const char *method, const char *path, json_object *body, long *status,
                json_object **reply, fm_error *e)
{
        *reply = NULL;
        *status = 0;
        CURL *h = curl_easy_init();
        if (!h)
                return fm_err(e, ENOMEM, "no curl handle");
        _cleanup_free_ char *url = fm_strdupf("%s%s", c->url, path);
        _cleanup_free_ char *auth = fm_strdupf("Authorization: Bearer %s", c->token);
        struct curl_slist *hdr = curl_slist_append(NULL, auth);
        hdr = curl_slist_append(hdr, "Accept: application/json");
        if (body)
                hdr = curl_slist_append(hdr, "Content-Type: application/json");
        buf b = {0};
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body)
                curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        if (c->ca[0])
                curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        CURLcode rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        curl_slist_free_all(hdr);
        curl_easy_cleanup(h);
        int r = 0;
        if (rc != CURLE_OK) {
                r = fm_err(e, EIO, "%s %s: %s", method, url, b.over ? "the answer is too large" : curl_easy_strerror(rc));
        } else if (b.n) {
                /* an answer may be an array: not fm_msg_parse (objects only), the same depth limit */
                json_tokener *tok = json_tokener_new_ex(32);
                *reply = tok ? json_tokener_parse_ex(tok, b.p, (int)b.n) : NULL;
                if (tok)
                        json_tokener_free(tok);
                if (!*reply)
                        r = fm_err(e, EPROTO, "%s %s: the answer (HTTP %ld) is not JSON", method, url, *status);
        }
        if (r == 0 && *status >= 400) {
                json_object *t = NULL, *d = NULL;
                json_object_object_get_ex(*reply, "title", &t);
                json_object_object_get_ex(*reply, "detail", &d);
                int code = *status == 404 ? ENOENT : *status == 409 ? EBUSY : *status == 401 ? EACCES : EINVAL;
                r = fm_err(e, code, "%ld %s: %s", *status, t ? json_object_get_string(t) : "error",
                           d ? json_object_get_string(d) : "(no detail)");
        }
        free(b.p);
        if (r < 0) {
                json_object_put(*reply);
                *reply = NULL;
        }
        return r;
}
