/* SPDX-License-Identifier: MIT */
/*
 * Delivery outcomes of outbound messages (store.h, "Delivery outcomes"): recording what a
 * connector's delivery attempt came to, reading a message's delivery state, retrying a
 * message that failed for good, and the channels this node serves (a reply on any other
 * channel is refused by the reply function, so nothing waits in an outbox nobody reads).
 * Each operation is one call of functions.lua (sb_delivery_record, sb_delivery_state,
 * sb_delivery_retry) on the conversation's shard. The model is in docs/delivery.md.
 */
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/store.h"
#include "core/store_internal.h"
#include "core/util.h"

/* A channel name goes into JSON and key names unescaped: lowercase letters, digits, _ -. */
static bool channel_valid(const char *ch)
{
    size_t n = ch ? strlen(ch) : 0;
    if (n == 0 || n > 31)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((ch[i] >= 'a' && ch[i] <= 'z') || (ch[i] >= '0' && ch[i] <= '9') || ch[i] == '_' ||
              ch[i] == '-'))
            return false;
    return true;
}

int sb_store_serve(sb_store_t *st, const char *channel)
{
    if (!channel_valid(channel))
        return SB_EINVAL;
    json_t *served = sb__store_served(st);
    size_t i;
    json_t *v;
    json_array_foreach(served, i, v)
    {
        if (strcmp(json_string_value(v), channel) == 0)
            return 0;
    }
    json_array_append_new(served, json_string(channel));
    return 0;
}

/*
 * A provider's text (reason, provider id) for the transcript: at most SB_DELIVERY_MAX_TEXT
 * bytes, cut at a character boundary; text that is not UTF-8 is replaced by a note saying so.
 */
static json_t *provider_text(const char *s)
{
    if (!s)
        return json_string("");
    size_t n = strnlen(s, SB_DELIVERY_MAX_TEXT);
    for (int k = 0; k < 3 && n > 0 && !sb_utf8_valid(s, n); k++)
        n--; /* a character cut in the middle */
    if (!sb_utf8_valid(s, n))
        return json_string("(not valid UTF-8)");
    return json_stringn(s, n);
}

/* The arguments of every delivery function: conversation and message. */
static json_t *msg_args(const char *conv, const char *mid)
{
    if (!sb_id_valid(conv, "c_") || !sb_id_valid(mid, "m_"))
        return NULL;
    return json_pack("{s:s, s:s}", "conv", conv, "mid", mid);
}

int sb_store_delivery_record(sb_store_t *s, const sb_delivery_t *d, sb_store_cb cb, void *data)
{
    json_t *a = msg_args(d->conv, d->mid);
    if (!a || !channel_valid(d->channel) || (!d->ok && d->retry_at > INT64_MAX)) {
        json_decref(a);
        return SB_EINVAL;
    }
    json_object_set_new(a, "channel", json_string(d->channel));
    json_object_set_new(a, "account", json_string(d->account ? d->account : ""));
    json_object_set_new(a, "ok", json_boolean(d->ok));
    json_object_set_new(a, "final", json_boolean(d->ok || d->final));
    if (d->bounce && !d->ok)
        json_object_set_new(a, "bounce", json_true());
    json_object_set_new(a, "reason", provider_text(d->ok ? NULL : d->reason));
    json_object_set_new(a, "provider_id", provider_text(d->provider_id));
    if (!d->ok && !d->final)
        json_object_set_new(a, "retry_at", json_integer((json_int_t)d->retry_at));
    /* one id: the event's */
    return sb__store_fcall(s, "sb_delivery_record", sb_store_shard(s, d->conv), a, 1, cb, data);
}

int sb_store_delivery_state(sb_store_t *s, const char *conv, const char *mid, sb_store_cb cb,
                            void *data)
{
    json_t *a = msg_args(conv, mid);
    if (!a)
        return SB_EINVAL;
    return sb__store_fcall(s, "sb_delivery_state", sb_store_shard(s, conv), a, 0, cb, data);
}

int sb_store_delivery_retry(sb_store_t *s, const char *conv, const char *mid, const sb_actor_t *who,
                            sb_store_cb cb, void *data)
{
    json_t *a = msg_args(conv, mid);
    if (!a || !who) {
        json_decref(a);
        return SB_EINVAL;
    }
    json_object_set_new(a, "author", sb__store_actor_json(who));
    json_object_set(a, "served", sb__store_served(s));
    return sb__store_fcall(s, "sb_delivery_retry", sb_store_shard(s, conv), a, 1, cb, data);
}
