/* SPDX-License-Identifier: MIT */
/* The version string of the build, for --version, /healthz and the Server header. */
#include "gateway/version.h"

const char *sb_version(void)
{
    return SB_VERSION;
}
