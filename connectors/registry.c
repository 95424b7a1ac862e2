/* SPDX-License-Identifier: MIT */
/* The list of built-in connectors. Adding one: a folder, a descriptor, a line here. */
#include "connectors/connector.h"
#include "core/alloc.h"

extern const sb_connector_desc_t sb_connector_webchat;
extern const sb_connector_desc_t sb_connector_email;
extern const sb_connector_desc_t sb_connector_mastodon;
extern const sb_connector_desc_t sb_connector_hook;
#ifdef SB_TESTING
/* Test builds only: tests/connectors/testchan (test_channel <channel> <url>). */
extern const sb_connector_desc_t sb_connector_testchan;
#endif

const sb_connector_desc_t *const sb_connectors[] = {
    &sb_connector_webchat,
    &sb_connector_email,
    &sb_connector_mastodon,
    &sb_connector_hook,
#ifdef SB_TESTING
    &sb_connector_testchan,
#endif
    NULL,
};

const sb_config_key_t *const *sb_connectors_config(void)
{
    static const sb_config_key_t *tables[SB_ARRAY_LEN(sb_connectors)];
    size_t n = 0;
    for (size_t i = 0; sb_connectors[i]; i++)
        if (sb_connectors[i]->config)
            tables[n++] = sb_connectors[i]->config;
    tables[n] = NULL;
    return tables;
}
