/* SPDX-License-Identifier: MIT */
/* The version of this build. */
#ifndef SB_GATEWAY_VERSION_H
#define SB_GATEWAY_VERSION_H

/** The version, e.g. "0.1.0" (static). */
const char *sb_version(void);

#endif
