/* SPDX-License-Identifier: MIT */
/* The list of built-in connectors. Adding one: a folder, a descriptor, a line here. */
#include "connectors/connector.h"

extern const sb_connector_desc_t sb_connector_webchat;

const sb_connector_desc_t *const sb_connectors[] = {
    &sb_connector_webchat,
    NULL,
};
