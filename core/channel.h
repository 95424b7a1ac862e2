/* SPDX-License-Identifier: MIT */
/*
 * The channels Switchboard knows, written once. Everything that lists channels (the
 * per-channel counters of /metrics, the `channel` checks of the API and sbctl, token
 * scopes) expands SB_CHANNELS or calls the helpers below, so adding a channel is adding
 * it here. A channel is a name; a connector (connectors/connector.h) may serve it.
 */
#ifndef SB_CHANNEL_H
#define SB_CHANNEL_H

#include <string.h>

/** X-macro of every channel, in index order: X(name). */
#define SB_CHANNELS(X) X(webchat) X(email) X(mastodon) X(bluesky) X(hook) X(api)

enum {
#define SB__CHANNEL_ENUM(n) SB_CHANNEL_##n,
    SB_CHANNELS(SB__CHANNEL_ENUM)
#undef SB__CHANNEL_ENUM
        SB_CHANNEL_COUNT /* the number of channels */
};

/** "webchat, email, mastodon, bluesky, hook, api": the list for messages (a const char *). */
#define SB__CHANNEL_TEXT(n)  ", " #n
#define SB_CHANNEL_LIST_TEXT (&(SB_CHANNELS(SB__CHANNEL_TEXT))[2])

/** The name of channel i (0 ≤ i < SB_CHANNEL_COUNT), or NULL out of range. */
static inline const char *sb_channel_name(int i)
{
    static const char *const names[] = {
#define SB__CHANNEL_NAME(n) #n,
        SB_CHANNELS(SB__CHANNEL_NAME)
#undef SB__CHANNEL_NAME
    };
    return i >= 0 && i < SB_CHANNEL_COUNT ? names[i] : NULL;
}

/** The index of a channel name, or -1 for NULL or an unknown name. */
static inline int sb_channel_index(const char *name)
{
    for (int i = 0; name && i < SB_CHANNEL_COUNT; i++)
        if (strcmp(name, sb_channel_name(i)) == 0)
            return i;
    return -1;
}

#endif
