/* SPDX-License-Identifier: MIT */
/*
 * libetpan, loaded when first used (as core/curl_dl.c does for libcurl). Linking it made
 * every daemon load libetpan and, through it, GnuTLS, p11-kit, nettle, Berkeley DB and
 * SASL, whose constructors run at start: 2.9 MB of the idle RSS (8.0 -> 10.9 MB,
 * tests/bench/run.sh) for a daemon with no mailbox configured. So nothing links
 * libetpan: these definitions of the libetpan functions the email connector uses
 * (compiled against its headers, same ABI) dlopen the library at the first call, from
 * whichever thread, and forward to it. When it cannot be loaded, each logs once and
 * answers as libetpan answers a failure (an error code, NULL).
 */
#include <dlfcn.h>
#include <libetpan/libetpan.h>
#include <pthread.h>
#include <stdbool.h>

#include "core/log.h"

typedef void (*sb_etpan_logger)(mailimap *, int, const char *, size_t, void *);
typedef void (*sb_etpan_ssl_cb)(struct mailstream_ssl_context *, void *);

/* X(return type, name, parameters, arguments, value on failure) */
#define ETPAN_FUNCS(X)                                                                             \
    X(int, charconv_buffer,                                                                        \
      (const char *tocode, const char *fromcode, const char *str, size_t length, char **result,    \
       size_t *result_len),                                                                        \
      (tocode, fromcode, str, length, result, result_len), MAIL_CHARCONV_ERROR_UNKNOWN_CHARSET)    \
    X(int, mailimap_capability, (mailimap * session, struct mailimap_capability_data * *result),   \
      (session, result), MAILIMAP_ERROR_MEMORY)                                                    \
    X(int, mailimap_connect, (mailimap * session, mailstream * s), (session, s),                   \
      MAILIMAP_ERROR_CONNECTION_REFUSED)                                                           \
    X(int, mailimap_examine, (mailimap * session, const char *mb), (session, mb),                  \
      MAILIMAP_ERROR_MEMORY)                                                                       \
    X(struct mailimap_fetch_att *, mailimap_fetch_att_new_body_peek_section,                       \
      (struct mailimap_section * section), (section), NULL)                                        \
    X(struct mailimap_fetch_att *, mailimap_fetch_att_new_rfc822_size, (void), (), NULL)           \
    X(struct mailimap_fetch_att *, mailimap_fetch_att_new_uid, (void), (), NULL)                   \
    X(int, mailimap_fetch_type_new_fetch_att_list_add,                                             \
      (struct mailimap_fetch_type * fetch_type, struct mailimap_fetch_att * fetch_att),            \
      (fetch_type, fetch_att), MAILIMAP_ERROR_MEMORY)                                              \
    X(struct mailimap_fetch_type *, mailimap_fetch_type_new_fetch_att_list_empty, (void), (),      \
      NULL)                                                                                        \
    X(int, mailimap_has_idle, (mailimap * session), (session), 0)                                  \
    X(int, mailimap_idle, (mailimap * session), (session), MAILIMAP_ERROR_MEMORY)                  \
    X(int, mailimap_idle_done, (mailimap * session), (session), MAILIMAP_ERROR_MEMORY)             \
    X(int, mailimap_idle_get_fd, (mailimap * session), (session), -1)                              \
    X(int, mailimap_login, (mailimap * session, const char *userid, const char *password),         \
      (session, userid, password), MAILIMAP_ERROR_MEMORY)                                          \
    X(mailimap *, mailimap_new, (size_t imap_progr_rate, progress_function * imap_progr_fun),      \
      (imap_progr_rate, imap_progr_fun), NULL)                                                     \
    X(int, mailimap_set_add_single, (struct mailimap_set * set, uint32_t indx), (set, indx),       \
      MAILIMAP_ERROR_MEMORY)                                                                       \
    X(struct mailimap_set *, mailimap_set_new_empty, (void), (), NULL)                             \
    X(struct mailimap_set *, mailimap_set_new_interval, (uint32_t first, uint32_t last),           \
      (first, last), NULL)                                                                         \
    X(int, mailimap_socket_starttls_with_callback,                                                 \
      (mailimap * f, sb_etpan_ssl_cb callback, void *data), (f, callback, data),                   \
      MAILIMAP_ERROR_SSL)                                                                          \
    X(struct mailimap_section *, mailimap_section_new, (struct mailimap_section_spec * sec_spec),  \
      (sec_spec), NULL)                                                                            \
    X(int, mailimap_uid_fetch,                                                                     \
      (mailimap * session, struct mailimap_set * set, struct mailimap_fetch_type * fetch_type,     \
       clist * *result),                                                                           \
      (session, set, fetch_type, result), MAILIMAP_ERROR_MEMORY)                                   \
    X(int, mailimf_address_list_parse,                                                             \
      (const char *message, size_t length, size_t *indx, struct mailimf_address_list **result),    \
      (message, length, indx, result), MAILIMF_ERROR_MEMORY)                                       \
    X(int, mailimf_envelope_and_optional_fields_parse,                                             \
      (const char *message, size_t length, size_t *indx, struct mailimf_fields **result),          \
      (message, length, indx, result), MAILIMF_ERROR_MEMORY)                                       \
    X(char *, mailmime_content_charset_get, (struct mailmime_content * content), (content), NULL)  \
    X(int, mailmime_parse,                                                                         \
      (const char *message, size_t length, size_t *indx, struct mailmime **result),                \
      (message, length, indx, result), MAILIMF_ERROR_MEMORY)                                       \
    X(int, mailmime_part_parse,                                                                    \
      (const char *message, size_t length, size_t *indx, int encoding, char **result,              \
       size_t *result_len),                                                                        \
      (message, length, indx, encoding, result, result_len), MAILIMF_ERROR_MEMORY)                 \
    X(int, mailstream_close, (mailstream * s), (s), -1)                                            \
    X(carray *, mailstream_get_certificate_chain, (mailstream * s), (s), NULL)                     \
    X(mailstream *, mailstream_socket_open_timeout, (int fd, time_t timeout), (fd, timeout), NULL) \
    X(mailstream *, mailstream_ssl_open_with_callback_timeout,                                     \
      (int fd, time_t timeout, sb_etpan_ssl_cb callback, void *data),                              \
      (fd, timeout, callback, data), NULL)                                                         \
    X(int, mailstream_ssl_set_server_name,                                                         \
      (struct mailstream_ssl_context * ssl_context, char *hostname), (ssl_context, hostname), -1)

/* X(name, parameters, arguments): the ones that return nothing */
#define ETPAN_VOIDS(X)                                                                             \
    X(charconv_buffer_free, (char *str), (str))                                                    \
    X(mailimap_capability_data_free, (struct mailimap_capability_data * cap_data), (cap_data))     \
    X(mailimap_fetch_list_free, (clist * fetch_list), (fetch_list))                                \
    X(mailimap_fetch_type_free, (struct mailimap_fetch_type * fetch_type), (fetch_type))           \
    X(mailimap_free, (mailimap * session), (session))                                              \
    X(mailimap_set_free, (struct mailimap_set * set), (set))                                       \
    X(mailimap_set_logger, (mailimap * session, sb_etpan_logger logger, void *logger_context),     \
      (session, logger, logger_context))                                                           \
    X(mailimap_set_timeout, (mailimap * session, time_t timeout), (session, timeout))              \
    X(mailimf_address_list_free, (struct mailimf_address_list * addr_list), (addr_list))           \
    X(mailimf_fields_free, (struct mailimf_fields * fields), (fields))                             \
    X(mailmime_decoded_part_free, (char *part), (part))                                            \
    X(mailmime_free, (struct mailmime * mime), (mime))                                             \
    X(mailstream_certificate_chain_free, (carray * certificate_chain), (certificate_chain))

static struct {
#define SB_ETPAN_PTR(ret, name, params, args, fail) ret(*name) params;
#define SB_ETPAN_VPTR(name, params, args)           void(*name) params;
    ETPAN_FUNCS(SB_ETPAN_PTR)
    ETPAN_VOIDS(SB_ETPAN_VPTR)
#undef SB_ETPAN_PTR
#undef SB_ETPAN_VPTR
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;

static void load(void)
{
    void *h = dlopen("libetpan.so.20", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        SB_LOG_ERROR("etpan.load", "err=\"%s\"", dlerror());
        return;
    }
    bool ok = true;
#define SB_ETPAN_SYM(name)                                                                         \
    *(void **)&fn.name = dlsym(h, #name);                                                          \
    ok = ok && fn.name;
#define SB_ETPAN_FSYM(ret, name, params, args, fail) SB_ETPAN_SYM(name)
#define SB_ETPAN_VSYM(name, params, args)            SB_ETPAN_SYM(name)
    ETPAN_FUNCS(SB_ETPAN_FSYM)
    ETPAN_VOIDS(SB_ETPAN_VSYM)
#undef SB_ETPAN_FSYM
#undef SB_ETPAN_VSYM
#undef SB_ETPAN_SYM
    if (!ok) {
        SB_LOG_ERROR("etpan.load", "err=\"a libetpan function is missing\"");
        dlclose(h);
        return;
    }
    loaded = true; /* never unloaded: its sessions and GnuTLS live until exit */
}

static bool ready(void)
{
    pthread_once(&once, load);
    return loaded;
}

#define SB_ETPAN_DEF(ret, name, params, args, fail)                                                \
    ret name params                                                                                \
    {                                                                                              \
        return ready() ? fn.name args : (fail);                                                    \
    }
#define SB_ETPAN_VDEF(name, params, args)                                                          \
    void name params                                                                               \
    {                                                                                              \
        if (ready())                                                                               \
            fn.name args;                                                                          \
    }
ETPAN_FUNCS(SB_ETPAN_DEF)
ETPAN_VOIDS(SB_ETPAN_VDEF)
