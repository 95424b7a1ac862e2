/* SPDX-License-Identifier: MIT */
/*
 * libcurl, loaded when first used. Linking it made every daemon load libcurl-gnutls and,
 * through it, GnuTLS, p11-kit, nettle, Kerberos and LDAP, whose constructors run at
 * start: 4 MB of the idle RSS (7.3 -> 11.3 MB) for a daemon that sends no webhook and
 * has no mail or social connector. So the daemon is not linked with libcurl: these
 * definitions of the libcurl functions we use (compiled against its headers, same ABI)
 * dlopen the library at the first call and forward to it.
 *
 * curl_global_init loads it and fails with CURLE_FAILED_INIT when it can't; callers
 * call it before anything else (libcurl's own rule). The variadic setopt functions pass
 * their one argument on by the option's type, which libcurl encodes in the option's
 * number (CURLOPTTYPE_*): long, pointer, function pointer or curl_off_t.
 */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>

#include "core/log.h"

#define CURL_FUNCS(X)                                                                              \
    X(CURLcode, curl_global_init, (long))                                                          \
    X(void, curl_global_cleanup, (void))                                                           \
    X(CURL *, curl_easy_init, (void))                                                              \
    X(void, curl_easy_cleanup, (CURL *))                                                           \
    X(CURLcode, curl_easy_setopt, (CURL *, CURLoption, ...))                                       \
    X(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...))                                        \
    X(const char *, curl_easy_strerror, (CURLcode))                                                \
    X(CURLM *, curl_multi_init, (void))                                                            \
    X(CURLMcode, curl_multi_cleanup, (CURLM *))                                                    \
    X(CURLMcode, curl_multi_setopt, (CURLM *, CURLMoption, ...))                                   \
    X(CURLMcode, curl_multi_add_handle, (CURLM *, CURL *))                                         \
    X(CURLMcode, curl_multi_remove_handle, (CURLM *, CURL *))                                      \
    X(CURLMcode, curl_multi_socket_action, (CURLM *, curl_socket_t, int, int *))                   \
    X(CURLMcode, curl_multi_assign, (CURLM *, curl_socket_t, void *))                              \
    X(CURLMsg *, curl_multi_info_read, (CURLM *, int *))                                           \
    X(const char *, curl_multi_strerror, (CURLMcode))                                              \
    X(struct curl_slist *, curl_slist_append, (struct curl_slist *, const char *))                 \
    X(void, curl_slist_free_all, (struct curl_slist *))

static struct {
#define SB_CURL_PTR(ret, name, args) ret(*name) args;
    CURL_FUNCS(SB_CURL_PTR)
#undef SB_CURL_PTR
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;

static void load(void)
{
    /* The build's own flavour first (Debian's libcurl4-gnutls-dev), then OpenSSL's. */
    static const char *const names[] = {"libcurl-gnutls.so.4", "libcurl.so.4"};
    void *h = NULL;
    for (size_t i = 0; !h && i < sizeof(names) / sizeof(names[0]); i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        SB_LOG_ERROR("curl.load", "err=\"%s\"", dlerror());
        return;
    }
    bool ok = true;
#define SB_CURL_SYM(ret, name, args)                                                               \
    *(void **)&fn.name = dlsym(h, #name);                                                          \
    ok = ok && fn.name;
    CURL_FUNCS(SB_CURL_SYM)
#undef SB_CURL_SYM
    if (!ok) {
        SB_LOG_ERROR("curl.load", "err=\"a libcurl function is missing\"");
        dlclose(h);
        return;
    }
    loaded = true; /* never unloaded: libcurl keeps global state until exit */
}

CURLcode curl_global_init(long flags)
{
    pthread_once(&once, load);
    return loaded ? fn.curl_global_init(flags) : CURLE_FAILED_INIT;
}

void curl_global_cleanup(void)
{
    if (loaded)
        fn.curl_global_cleanup();
}

CURL *curl_easy_init(void)
{
    return loaded ? fn.curl_easy_init() : NULL;
}

void curl_easy_cleanup(CURL *c)
{
    fn.curl_easy_cleanup(c);
}

/* The type of a setopt's value, from the option's number (curl.h: CURLOPTTYPE_*). */
static int opt_kind(int option)
{
    if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB)
        return 'o';
    if (option >= CURLOPTTYPE_FUNCTIONPOINT && option < CURLOPTTYPE_OFF_T)
        return 'f';
    if (option >= CURLOPTTYPE_OBJECTPOINT)
        return 'p'; /* objects, strings, lists, blobs */
    return 'l';
}

/* rc = setopt(handle, option, <the next argument of ap, read as the option's type>) */
#define FORWARD_OPT(rc, setopt, handle, option, ap)                                                \
    switch (opt_kind((int)(option))) {                                                             \
    case 'o':                                                                                      \
        rc = setopt(handle, option, va_arg(ap, curl_off_t));                                       \
        break;                                                                                     \
    case 'f':                                                                                      \
        rc = setopt(handle, option, va_arg(ap, void (*)(void)));                                   \
        break;                                                                                     \
    case 'p':                                                                                      \
        rc = setopt(handle, option, va_arg(ap, void *));                                           \
        break;                                                                                     \
    default:                                                                                       \
        rc = setopt(handle, option, va_arg(ap, long));                                             \
    }

CURLcode curl_easy_setopt(CURL *c, CURLoption option, ...)
{
    va_list ap;
    va_start(ap, option);
    CURLcode rc;
    FORWARD_OPT(rc, fn.curl_easy_setopt, c, option, ap)
    va_end(ap);
    return rc;
}

CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
    va_list ap;
    va_start(ap, info);
    CURLcode rc = fn.curl_easy_getinfo(c, info, va_arg(ap, void *)); /* always a pointer */
    va_end(ap);
    return rc;
}

const char *curl_easy_strerror(CURLcode code)
{
    return loaded ? fn.curl_easy_strerror(code) : "libcurl not loaded";
}

CURLM *curl_multi_init(void)
{
    return loaded ? fn.curl_multi_init() : NULL;
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
    return fn.curl_multi_cleanup(m);
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption option, ...)
{
    va_list ap;
    va_start(ap, option);
    CURLMcode rc;
    FORWARD_OPT(rc, fn.curl_multi_setopt, m, option, ap)
    va_end(ap);
    return rc;
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *c)
{
    return fn.curl_multi_add_handle(m, c);
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *c)
{
    return fn.curl_multi_remove_handle(m, c);
}

CURLMcode curl_multi_socket_action(CURLM *m, curl_socket_t s, int ev_bitmask, int *running)
{
    return fn.curl_multi_socket_action(m, s, ev_bitmask, running);
}

CURLMcode curl_multi_assign(CURLM *m, curl_socket_t s, void *p)
{
    return fn.curl_multi_assign(m, s, p);
}

CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
    return fn.curl_multi_info_read(m, left);
}

const char *curl_multi_strerror(CURLMcode code)
{
    return loaded ? fn.curl_multi_strerror(code) : "libcurl not loaded";
}

/* Lists are built before curl_global_init by some callers: load on demand here too. */
struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
    pthread_once(&once, load);
    return loaded ? fn.curl_slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
    if (list && loaded)
        fn.curl_slist_free_all(list);
}
