#!lua name=switchboard
-- SPDX-License-Identifier: MIT
--
-- The `switchboard` Redis Function library (Redis >= 7): every operation that changes a
-- conversation runs here as one atomic call, so two staff members or two nodes can
-- never race. Loaded with FUNCTION LOAD REPLACE on every connect (core/store.c).
--
-- Calling convention: FCALL <fn> 1 <prefix>{N}:events <json-args>. KEYS[1] only routes
-- the call to the shard's slot; every other key is built here with the same {N} hash
-- tag, so all keys one call touches live in one Redis Cluster slot.
-- Arguments and results are JSON (cjson). Errors are `-<CODE> text` replies with CODE
-- one of NOTFOUND, CONFLICT, FORBIDDEN, INVAL (mapped to SB_E* codes in C).
--
-- Keys of shard N (docs/contract.md §2): conv:<cid> (hash), log:<cid> (stream; entry id = seq,
-- field m = message JSON), events (stream, MAXLEN ~), queue (zset, open conversations
-- awaiting a staff reply, score = urgency in ms), dedup:<key> (string, TTL: "cid seq"),
-- cl:<ctid> (hash channel -> latest cid of that contact), cc:<ctid> (zset of the
-- contact's conversations by creation time), snoozed (zset, score = wake time),
-- outbox:<channel> (stream of outbound messages for email/social connectors), rt (stream
-- of staff response times).
--
-- Status indexes: every conversation of the shard is in exactly one of the zsets
-- queue (open, awaiting a reply; score = urgency), idle (open, nobody waiting; score =
-- since when), pending (score = since when), snoozed (score = wake time) and resolved
-- (score = resolved_at). `counts` (hash) holds `<index>:<channel>` -> members, and
-- `breaches` (SLA breaches, for the SLA function to count). reindex() keeps them in
-- step with the state on every commit; the ingest hot path does it by hand.

local EMPTY = '__sb_empty_array__'

-- The clock is always the calling node's (`now` in the arguments), never Redis TIME: one
-- source of time, which tests can move (core/sys.h), and no TIME call per function.
local function caller_now(args)
    local now = tonumber(args.now)
    if not now then error('now not passed') end
    return now
end

local function err(code, text)
    return redis.error_reply(code .. ' ' .. text)
end

local function encode(v)
    return (string.gsub(cjson.encode(v), '"' .. EMPTY .. '"', '[]'))
end

local function nz(s)
    if s == nil or s == false or s == '' then return cjson.null end
    return s
end

local function nzn(s)
    if s == nil or s == false or s == '' then return cjson.null end
    return tonumber(s)
end

-- A context for one call: the shard's key prefix, the clock, the ids C generated.
local function context(args)
    local ctx = {a = args, pre = args.prefix .. '{' .. args.shard .. '}:', now = caller_now(args),
                 ids = args.ids or {}, nid = 0, events = {}}
    ctx.maxlen = args.events_maxlen or 100000
    ctx.sla = args.sla == true -- some `sla` policy is configured: keep the clocks (docs/sla.md)
    return ctx
end

local function next_id(ctx)
    ctx.nid = ctx.nid + 1
    local id = ctx.ids[ctx.nid]
    if not id then error('not enough ids passed') end
    return id
end

local function conv_key(ctx, cid) return ctx.pre .. 'conv:' .. cid end
local function log_key(ctx, cid) return ctx.pre .. 'log:' .. cid end

-- The next seq of a conversation: explicit stream ids keep seq inside the stored JSON.
local function next_seq_at(now, last)
    local ms, n = 0, -1
    if last and last ~= '' then
        local a, b = string.match(last, '^(%d+)-(%d+)$')
        ms, n = tonumber(a), tonumber(b)
    end
    if now > ms then return string.format('%d-0', now) end
    return string.format('%d-%d', ms, n + 1)
end

local function next_seq(ctx, last)
    return next_seq_at(ctx.now, last)
end

local CONV_FIELDS = {'id', 'channel', 'status', 'priority', 'assignee', 'contact_id',
    'contact_name', 'contact_verified', 'subject', 'created_at', 'updated_at', 'last_seq',
    'awaiting_since', 'first_response_at', 'resolved_at', 'snooze_until', 'tags', 'msgs',
    'last_message_at'}

-- A conversation's state is one field `s` of its hash: the CONV_FIELDS values as a
-- MessagePack array. One HGET/HSET and C-speed (de)serialisation instead of 19 hash
-- fields: turning each field of a reply into a Lua string was the largest single cost.

local function conv_from(s, o)
    local vals = cmsgpack.unpack(s)
    local c = {_packed = s, o = o}
    for i, f in ipairs(CONV_FIELDS) do c[f] = vals[i] or '' end
    c._was = {status = c.status, awaiting_since = c.awaiting_since, priority = c.priority,
              snooze_until = c.snooze_until, first_response_at = c.first_response_at}
    return c
end

-- A conversation's state, with its public SLA object (field o, written by sb_sla_set).
local function load_conv(ctx, cid)
    local r = redis.call('HMGET', conv_key(ctx, cid), 's', 'o')
    if not r[1] then return nil end
    return conv_from(r[1], r[2] or nil)
end

local function save_conv(ctx, c)
    local vals = {}
    for i, f in ipairs(CONV_FIELDS) do vals[i] = c[f] or '' end
    local packed = cmsgpack.pack(vals)
    if packed ~= c._packed then
        redis.call('HSET', conv_key(ctx, c.id), 's', packed)
        c._packed = packed
    end
end

-- JSON text of a string (quoted, escaped), or null for nil/empty.
local function js(v)
    if v == nil or v == '' or v == cjson.null then return 'null' end
    return cjson.encode(v)
end

-- A string we generated ourselves (ids, seqs, enums): quoted without escaping.
local function jq(v)
    if v == nil or v == '' or v == cjson.null then return 'null' end
    return '"' .. v .. '"'
end

local function jn(v)
    if v == nil or v == '' then return 'null' end
    return v
end

local NO_SLA = '{"policy":null,"first_response_due":null,"next_response_due":null,' ..
    '"resolution_due":null,"breaches":[],"paused":false}'

-- The conversation as docs/contract.md §4 JSON. Written by hand: cjson on this table costs more
-- than all the Redis calls of an ingest together.
local function conv_json(c)
    return table.concat({
        '{"id":"', c.id, '","channel":"', c.channel, '","status":"', c.status,
        '","priority":"', c.priority, '","assignee":', jq(c.assignee),
        ',"contact":{"id":', jq(c.contact_id), ',"name":', js(c.contact_name),
        ',"verified":', c.contact_verified == '1' and 'true' or 'false',
        '},"subject":', js(c.subject), ',"created_at":', jn(c.created_at),
        ',"updated_at":', jn(c.updated_at), ',"last_seq":', jq(c.last_seq),
        ',"awaiting_since":', jn(c.awaiting_since),
        ',"first_response_at":', jn(c.first_response_at),
        ',"resolved_at":', jn(c.resolved_at), ',"snooze_until":', jn(c.snooze_until),
        ',"message_count":', jn(c.msgs ~= '' and c.msgs or '0'),
        ',"last_message_at":', jn(c.last_message_at),
        ',"sla":', c.o or NO_SLA, ',"tags":', c.tags ~= '' and c.tags or '[]', '}'})
end

-- The part of a conversation's state that changes with its transcript: what every event
-- and every message result carries (GET the conversation for the rest).
local function state_json(id, status, priority, assignee, awaiting, last_seq, msgs, updated)
    return table.concat({
        '{"id":"', id, '","status":"', status, '","priority":"', priority,
        '","assignee":', jq(assignee), ',"awaiting_since":', jn(awaiting),
        ',"last_seq":', jq(last_seq), ',"message_count":', jn(msgs ~= '' and msgs or '0'),
        ',"updated_at":', jn(updated), '}'})
end

local function conv_state_json(c)
    return state_json(c.id, c.status, c.priority, c.assignee, c.awaiting_since, c.last_seq,
                      c.msgs, c.updated_at)
end

local MSG_KNOWN = {id = true, conv = true, seq = true, ts = true, kind = true, dir = true,
                   channel = true, author = true, text = true, json = true, tail = true}

-- A transcript entry as docs/contract.md §3 JSON (known fields by hand, extras through cjson).
local function msg_head(id, conv, seq, ts, kind, dir)
    return table.concat({'{"id":"', id, '","conv":"', conv, '","seq":"', seq, '","ts":',
                         string.format('%d', ts), ',"kind":"', kind, '","dir":"', dir, '"'})
end

local function msg_json(m)
    if m.tail then -- the rest was serialised by the caller (core/store.c)
        return msg_head(m.id, m.conv, m.seq, m.ts, m.kind, m.dir) .. m.tail
    end
    local a = m.author or {}
    local p = {'{"id":"', m.id, '","conv":"', m.conv, '","seq":"', m.seq, '","ts":',
               string.format('%d', m.ts), ',"kind":"', m.kind, '","dir":"', m.dir,
               '","channel":"', m.channel, '","author":{"type":', jq(a.type), ',"id":', jq(a.id),
               ',"name":', js(a.name), '}'}
    if m.text then
        p[#p + 1] = ',"text":'
        p[#p + 1] = js(m.text)
    end
    for k, v in pairs(m) do
        if not MSG_KNOWN[k] and v ~= nil and v ~= '' then
            p[#p + 1] = ',' .. cjson.encode(k) .. ':' .. encode(v)
        end
    end
    p[#p + 1] = '}'
    return table.concat(p)
end

-- The urgency score of the queue: awaiting since, pulled forward by priority.
local function queue_score(awaiting, priority)
    local score = tonumber(awaiting)
    if priority == 'urgent' then return score - 3600000 end
    if priority == 'high' then return score - 600000 end
    return score
end

-- The status index a conversation belongs to (see the top of this file).
local function index_of(status, awaiting)
    if status == 'open' then return awaiting ~= '' and 'queue' or 'idle' end
    return status
end

-- Moves c between the status indexes when its state changed since it was loaded.
local function reindex(ctx, c)
    local o = c._was
    local new = index_of(c.status, c.awaiting_since)
    local old = o and index_of(o.status, o.awaiting_since)
    local score
    if new == 'queue' then
        if old == new and o.awaiting_since == c.awaiting_since and o.priority == c.priority then
            return
        end
        score = queue_score(c.awaiting_since, c.priority)
    elseif new == 'snoozed' then
        if old == new and o.snooze_until == c.snooze_until then return end
        score = tonumber(c.snooze_until)
    elseif old == new then
        return
    elseif new == 'resolved' then
        score = tonumber(c.resolved_at) or ctx.now
    else
        score = ctx.now
    end
    local counts = ctx.pre .. 'counts'
    if old ~= new then
        if old then
            redis.call('ZREM', ctx.pre .. old, c.id)
            redis.call('HINCRBY', counts, old .. ':' .. c.channel, -1)
        end
        redis.call('HINCRBY', counts, new .. ':' .. c.channel, 1)
    end
    redis.call('ZADD', ctx.pre .. new, score, c.id)
end

-- Appends one transcript entry and its event; updates c.last_seq / c.updated_at.
local function append(ctx, c, m)
    m.id = m.id or next_id(ctx)
    m.conv = c.id
    m.ts = ctx.now
    m.channel = m.channel or c.channel
    m.seq = next_seq(ctx, c.last_seq)
    local json = msg_json(m)
    redis.call('XADD', log_key(ctx, c.id), m.seq, 'm', json)
    c.last_seq = m.seq
    c.updated_at = tostring(ctx.now)
    ctx.events[#ctx.events + 1] = {kind = m.kind, json = json}
    m.json = json
    return m
end

-- ---- SLA clock facts (docs/sla.md) ----
--
-- Field k of conv:<cid>: MessagePack {rev, dirty, opens, policy, clocks = {<clock> = {gen, key,
-- used, segs, since, done}}, fired = {"<clock>:<gen>:<percent>" = 1}, breaches, steps,
-- due}. This side records when each clock ran (wall-clock intervals); C turns that into
-- due times in business hours (core/sla.h) and hands back a plan (sb_sla_set).

local CLOCKS = {'first_response', 'next_response', 'resolution'}

-- (MessagePack, like the state field s: a third of the Redis time JSON took here)
local function k_decode(s)
    if s then
        local k = cmsgpack.unpack(s)
        k.clocks = k.clocks or {}
        k.fired = k.fired or {}
        k.breaches = k.breaches or {}
        k.steps = k.steps or {}
        k.due = k.due or {}
        return k
    end
    return {rev = 0, opens = 0, clocks = {}, fired = {}, breaches = {}, steps = {}, due = {}}
end

local function k_load(ctx, cid)
    return k_decode(redis.call('HGET', conv_key(ctx, cid), 'k'))
end

-- A conversation and its clock facts in one read (the timers' functions need both).
local function load_conv_k(ctx, cid)
    local r = redis.call('HMGET', conv_key(ctx, cid), 's', 'o', 'k')
    if not r[1] then return nil end
    return conv_from(r[1], r[2] or nil), k_decode(r[3] or nil)
end

-- cjson writes an empty Lua table as {}: arrays go out through encode()'s marker.
local function arr(t) return #t > 0 and t or EMPTY end

local function k_save(ctx, cid, k)
    redis.call('HSET', conv_key(ctx, cid), 'k', cmsgpack.pack({rev = k.rev, dirty = k.dirty,
        opens = k.opens, policy = k.policy, clocks = k.clocks, fired = k.fired,
        breaches = k.breaches, steps = k.steps, due = k.due, paused = k.paused}))
end

-- The public `sla` object of the conversation (docs/contract.md §4), kept in field o.
local function o_save(ctx, cid, k)
    local d = k.due or {}
    local o = encode({policy = k.policy or cjson.null,
        first_response_due = d.first_response or cjson.null,
        next_response_due = d.next_response or cjson.null,
        resolution_due = d.resolution or cjson.null,
        breaches = arr(k.breaches), paused = k.paused == true})
    redis.call('HSET', conv_key(ctx, cid), 'o', o)
    return o
end

-- Which clocks have a period now (live) and count now (run), and which wait each one
-- measures (key: a new key starts the clock over, with a new gen).
local function clock_want(c, opens)
    local open, waiting = c.status == 'open', c.awaiting_since ~= ''
    local answered = c.first_response_at ~= ''
    return {
        first_response = {live = waiting and not answered, run = open and waiting and not answered,
                          key = 'f' .. opens, from = tonumber(c.awaiting_since)},
        next_response = {live = waiting and answered, run = open and waiting and answered,
                         key = 'n' .. c.awaiting_since, from = tonumber(c.awaiting_since)},
        resolution = {live = c.status ~= 'resolved', run = open, key = 'r' .. opens,
                      from = opens == 0 and tonumber(c.created_at) or nil},
    }
end

-- Records what the change to c did to its clocks; a change marks it for planning.
local function sla_update(ctx, c)
    if not ctx.sla then return end
    local was = c._was
    if was and was.status == c.status and was.awaiting_since == c.awaiting_since and
        was.priority == c.priority and was.first_response_at == c.first_response_at and
        not c._k then
        return -- nothing a clock depends on moved (and no k is loaded to save)
    end
    local k = c._k or k_load(ctx, c.id)
    c._k = k
    local changed = not was or was.priority ~= c.priority
    if was and was.status == 'resolved' and c.status ~= 'resolved' then
        k.opens = (k.opens or 0) + 1
        changed = true
    end
    local want = clock_want(c, k.opens or 0)
    for _, name in ipairs(CLOCKS) do
        local w, cl = want[name], k.clocks[name]
        if w.live then
            if not cl or cl.done or cl.key ~= w.key then
                local from = w.run and math.min(w.from or ctx.now, ctx.now) or nil
                k.clocks[name] = {gen = ((cl and cl.gen) or 0) + 1, key = w.key, used = 0,
                                  segs = {}, since = from, done = false}
                changed = true
            elseif w.run and not cl.since then -- resumed
                cl.since = ctx.now
                changed = true
            elseif not w.run and cl.since then -- paused
                cl.segs[#cl.segs + 1] = {cl.since, ctx.now}
                cl.since = nil
                changed = true
            end
        elseif cl and not cl.done then -- answered, resolved: stopped for good
            if cl.since then cl.segs[#cl.segs + 1] = {cl.since, ctx.now} end
            cl.since = nil
            cl.done = true
            changed = true
        end
    end
    if changed then
        k.rev = (k.rev or 0) + 1
        k.dirty = true
        k_save(ctx, c.id, k)
        redis.call('ZADD', ctx.pre .. 'sla', ctx.now, c.id)
    end
end

-- A fact for reports (docs/sla.md: the facts stream), entry id = now.
local function fact(ctx, fields)
    local argv = {'XADD', ctx.pre .. 'facts', 'MAXLEN', '~', 1000000, '*'}
    for i = 1, #fields, 2 do
        argv[#argv + 1] = fields[i]
        argv[#argv + 1] = fields[i + 1] or ''
    end
    redis.call(unpack(argv))
end

-- The policy a conversation's clocks were last planned with ('' when none).
local function policy_of(ctx, c)
    if not ctx.sla then return '' end
    local k = c._k or k_load(ctx, c.id)
    c._k = k
    return k.policy or ''
end

-- Writes c back and publishes the pending events, each with the conversation's state.
-- Returns the conversation's state JSON (encoded once, shared by events and the result).
local function commit(ctx, c)
    save_conv(ctx, c)
    reindex(ctx, c)
    sla_update(ctx, c)
    local cj = conv_state_json(c)
    local head = '{"conv":"' .. c.id .. '","conversation":' .. cj .. ',"type":"'
    for _, ev in ipairs(ctx.events) do
        redis.call('XADD', ctx.pre .. 'events', 'MAXLEN', '~', ctx.maxlen, '*',
                   'conv', c.id, 'e', head .. ev.kind .. '","message":' .. ev.json .. '}')
    end
    return cj
end

-- A JSON result object from pre-encoded parts: fields is a list of {name, json-text}.
local function result(fields)
    local parts = {}
    for i, f in ipairs(fields) do parts[i] = '"' .. f[1] .. '":' .. f[2] end
    return '{' .. table.concat(parts, ',') .. '}'
end

local function bool(b) return b and 'true' or 'false' end

local function event_entry(ctx, c, etype, author, extra)
    local m = {kind = 'event', type = etype, dir = 'internal',
               author = author or {type = 'system'}}
    if extra then for k, v in pairs(extra) do m[k] = v end end
    return append(ctx, c, m)
end

-- A dedup hit: the stored message and the conversation as it is now.
local function duplicate(ctx, dk)
    local prev = redis.call('GET', dk)
    if not prev then return nil end
    local cid, seq = string.match(prev, '^(%S+) (%S+)$')
    local c = load_conv(ctx, cid)
    if not c then return nil end
    local r = redis.call('XRANGE', log_key(ctx, cid), seq, seq)
    if #r == 0 then return nil end
    return result({{'duplicate', 'true'}, {'created', 'false'}, {'message', r[1][2][2]},
                   {'conversation', conv_state_json(c)}})
end

local function new_conv(ctx, a, cid)
    local c = {}
    for _, f in ipairs(CONV_FIELDS) do c[f] = '' end
    c.id = cid
    c.channel = a.channel
    c.status = 'open'
    c.priority = 'normal'
    c.contact_id = a.contact.id
    c.contact_name = a.contact.name or ''
    c.contact_verified = a.contact.verified and '1' or '0'
    c.subject = a.subject or ''
    c.created_at = tostring(ctx.now)
    c.tags = '[]'
    c.msgs = '0'
    redis.call('HSET', ctx.pre .. 'cl:' .. a.contact.id, a.channel, cid)
    redis.call('ZADD', ctx.pre .. 'cc:' .. a.contact.id, ctx.now, cid)
    return c
end

-- The hot path of ingest: a customer message appended to an open conversation, working
-- on the packed state array directly (indices follow CONV_FIELDS).
local function fast_append(a, pre, dk, v)
    -- The calling node's clock; seqs stay monotonic via next_seq_at.
    local now = caller_now(a)
    local cid = v[1]
    local seq = next_seq_at(now, v[12])
    local json = msg_head(a.ids[1], cid, seq, now, 'message', 'in') .. a.tail
    redis.call('XADD', pre .. 'log:' .. cid, seq, 'm', json)
    local ts = string.format('%d', now)
    local was_awaiting = v[13]
    v[11], v[12], v[19] = ts, seq, ts
    v[18] = tostring((tonumber(v[18]) or 0) + 1)
    if was_awaiting == '' then v[13] = ts end
    redis.call('HSET', pre .. 'conv:' .. cid, 's', cmsgpack.pack(v))
    if was_awaiting == '' then -- idle -> queue (what reindex() would do)
        redis.call('ZREM', pre .. 'idle', cid)
        redis.call('ZADD', pre .. 'queue', queue_score(ts, v[4]), cid)
        redis.call('HINCRBY', pre .. 'counts', 'idle:' .. v[2], -1)
        redis.call('HINCRBY', pre .. 'counts', 'queue:' .. v[2], 1)
    end
    local st = state_json(cid, v[3], v[4], v[5], v[13], seq, v[18], ts)
    -- Not trimmed here (1.5 us of 25): sb_wake trims every shard's events once a second.
    redis.call('XADD', pre .. 'events', '*', 'conv', cid,
               'e', '{"conv":"' .. cid .. '","conversation":' .. st ..
               ',"type":"message","message":' .. json .. '}')
    if dk then redis.call('SET', dk, cid .. ' ' .. seq, 'EX', a.dedup_ttl or 604800) end
    return '{"duplicate":false,"created":false,"reopened":false,"message":' .. json ..
           ',"conversation":' .. st .. '}'
end

-- The fast path's inputs, positional (ARGV[3..12]: decoding the JSON arguments was an
-- eighth of an append): pre, contact id, channel, conv, contact name, subject?, dedup
-- key, now, message id, dedup ttl. '' = absent.
local function ingest_fast(argv)
    local pre, ctid, channel, conv = argv[3], argv[4], argv[5], argv[6]
    local dk = argv[9] ~= '' and pre .. 'dedup:' .. argv[9] or nil
    if dk then
        local d = duplicate({pre = pre}, dk)
        if d then return d end
    end
    local cid = conv
    if cid == '' then cid = redis.call('HGET', pre .. 'cl:' .. ctid, channel) end
    local packed = cid and redis.call('HGET', pre .. 'conv:' .. cid, 's')
    if not packed then return nil end
    local v = cmsgpack.unpack(packed)
    local name = argv[7]
    -- A conversation named by the caller must be this contact's on this channel: else the
    -- general path answers the error.
    if conv ~= '' and (v[6] ~= ctid or v[2] ~= channel) then return nil end
    -- (with SLA clocks kept, a message that starts a wait takes the general path: commit)
    if v[3] == 'open' and (name == '' or name == v[7]) and (v[9] ~= '' or argv[8] == '') and
        not (argv[13] == '1' and v[13] == '') then
        return fast_append({now = argv[10], ids = {argv[11]}, tail = argv[2],
                            dedup_ttl = tonumber(argv[12])}, pre, dk, v)
    end
    return nil
end

-- ingest: a customer message (dedup, create/append/reopen, queue, events).
local function ingest(keys, argv)
    -- (an automatic message never sends the fast path's inputs: core/store_ingest.c)
    if argv[12] then
        local r = ingest_fast(argv)
        if r then return r end
    end
    local a = cjson.decode(argv[1])
    if argv[2] then a.tail = argv[2] end -- the message JSON tail, passed verbatim
    if argv[5] and not argv[12] then
        -- Sent on after a redirect (core/store.c): ARGV[3] shard, [4] conversation,
        -- [5] "latest" (continue that conversation or answer fallback) or "home".
        a.shard = argv[3]
        a.conv = argv[4] ~= '' and argv[4] or nil
        a.latest = argv[5] == 'latest'
        a.home_only = argv[5] == 'home'
    end
    local pre = a.prefix .. '{' .. a.shard .. '}:'
    local dk
    if a.dedup and a.dedup ~= '' then
        dk = pre .. 'dedup:' .. a.dedup
        local d = duplicate({pre = pre}, dk)
        if d then return d end
    end
    local cid = a.conv
    if (not cid or cid == '') and not a.fresh then
        -- a.fresh: a new conversation whatever the contact's latest is (a mail that threads
        -- nowhere); else the contact's latest on this channel continues
        cid = redis.call('HGET', pre .. 'cl:' .. a.contact.id, a.channel)
    end
    local packed = cid and redis.call('HGET', pre .. 'conv:' .. cid, 's')
    if a.conv and a.conv ~= '' and not packed then
        -- latest: sent here by a redirect, and that conversation is gone: start one at home
        if a.latest then return '{"fallback":true}' end
        return err('NOTFOUND', 'no conversation ' .. a.conv)
    end
    if cid and not packed and not a.home_only then
        -- The contact's latest conversation on this channel lives in another shard (its
        -- contact was merged into this one): the caller sends the message there.
        return '{"redirect":"' .. cid .. '"}'
    end
    if packed then
        local v = cmsgpack.unpack(packed)
        if a.conv and a.conv ~= '' and not a.latest and
            (v[6] ~= a.contact.id or (v[2] ~= a.channel and not a.cross)) then
            -- Never into another customer's conversation, nor across channels (the API
            -- checked both; a merge may have moved the conversation since), unless the
            -- connector continues one on purpose (a web chat answered by mail: a.cross).
            return err('CONFLICT', 'conversation ' .. a.conv .. ' is not this contact\'s on ' ..
                       tostring(a.channel))
        end
        if not a.auto and v[3] == 'open' and (not a.contact.name or a.contact.name == v[7]) and
            (v[9] ~= '' or not a.subject) and not (a.sla == true and v[13] == '') then
            return fast_append(a, pre, dk, v)
        end
    end
    -- The general path: new conversation, reopen, or state to update.
    local ctx = context(a)
    local c, created, reopened
    if packed then
        c = conv_from(packed)
        if (not a.conv or a.latest) and c.status == 'resolved' and
            ctx.now - (tonumber(c.resolved_at) or 0) > (a.reopen_window_ms or 0) then
            c = nil
        end
    end
    if not c and a.latest then
        return '{"fallback":true}' -- a new conversation belongs in the contact's own shard
    end
    if not c then
        c = new_conv(ctx, a, a.new_conv)
        created = true
        event_entry(ctx, c, 'created')
    end
    -- An automatic message (auto-reply, bounce, list mail; docs/threading.md) changes no
    -- state: no reopen, no wait, no queue place, no subject or name from it.
    if c.status ~= 'open' and not a.auto then
        reopened = c.status == 'resolved'
        event_entry(ctx, c, 'reopened', nil, {from = c.status})
        c.status = 'open'
        c.resolved_at = ''
        c.snooze_until = ''
    end
    if c.subject == '' and a.subject and not a.auto then c.subject = a.subject end
    if a.contact.name and a.contact.name ~= '' and c.contact_id == a.contact.id and
        not a.auto then
        c.contact_name = a.contact.name -- only the conversation's own customer renames it
    end
    local m = append(ctx, c, {kind = 'message', dir = 'in', id = a.ids[#a.ids], tail = a.tail})
    c.msgs = tostring((tonumber(c.msgs) or 0) + 1)
    c.last_message_at = tostring(ctx.now)
    if a.auto then
        -- one it started awaits nobody: resolved at once, out of every queue
        if created then
            c.status = 'resolved'
            c.resolved_at = tostring(ctx.now)
            event_entry(ctx, c, 'resolved', nil, {reason = 'automatic'})
        end
    elseif c.awaiting_since == '' then
        c.awaiting_since = tostring(ctx.now)
    end
    local cj = commit(ctx, c)
    if dk then
        redis.call('SET', dk, c.id .. ' ' .. m.seq, 'EX', a.dedup_ttl or 604800)
    end
    return result({{'duplicate', 'false'}, {'created', bool(created)},
                   {'reopened', bool(reopened)}, {'message', m.json}, {'conversation', cj}})
end

-- Messages and customer-visible replies newer than `based_on` (for collision checks).
local function newer_public(ctx, cid, based_on)
    local out = {}
    local r = redis.call('XRANGE', log_key(ctx, cid), '(' .. based_on, '+', 'COUNT', 100)
    for _, e in ipairs(r) do
        if string.find(e[2][2], '"kind":"message"', 1, true) then out[#out + 1] = e[2][2] end
    end
    return out
end

-- The common start of reply and note: the conversation and the dedup key, or the reply
-- to return at once (an error, or the first result of a repeated client_id).
local function post_start(a)
    local ctx = context(a)
    local c = load_conv(ctx, a.conv)
    if not c then return nil, err('NOTFOUND', 'no conversation ' .. a.conv) end
    local dk
    if a.dedup and a.dedup ~= '' then
        dk = ctx.pre .. 'dedup:' .. a.dedup
        local d = duplicate(ctx, dk)
        if d then return nil, d end
    end
    return ctx, c, dk
end

-- The common end of reply and note: write back, publish, remember the client_id.
local function post_finish(ctx, c, m, dk, a, first_ms)
    local cj = commit(ctx, c)
    if dk then redis.call('SET', dk, c.id .. ' ' .. m.seq, 'EX', a.dedup_ttl or 604800) end
    local r = {{'duplicate', 'false'}, {'message', m.json}, {'conversation', cj}}
    -- this reply was the conversation's first human response: how long it took (/metrics)
    if first_ms then r[#r + 1] = {'first_response_ms', string.format('%d', first_ms)} end
    return result(r)
end

-- Whether a running connector serves a channel: a.served lists them (the calling node's
-- started connectors, core/store_delivery.c); webchat and api when a caller sends none.
local function serves(a, channel)
    for _, ch in ipairs(type(a.served) == 'table' and a.served or {'webchat', 'api'}) do
        if ch == channel then return true end
    end
    return false
end

local function unavailable(channel)
    return err('UNAVAILABLE', 'no running connector serves channel ' .. channel ..
               ': the reply was not stored')
end

-- Channels whose replies go out through outbox:<channel> (webchat and api clients read
-- the events feed instead).
local function has_outbox(channel)
    return channel ~= 'webchat' and channel ~= 'api'
end

-- reply: a staff or bot answer to the customer (collision check, queue, outbox).
local function reply(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx, c, dk = post_start(a)
    if not ctx then return c end
    -- Refused before anything is written: nobody would ever deliver it (docs/delivery.md).
    if not serves(a, c.channel) then return unavailable(c.channel) end
    if a.based_on and a.based_on ~= '' and not a.force then
        local newer = newer_public(ctx, c.id, a.based_on)
        if #newer > 0 then
            return result({{'conflict', 'true'}, {'messages', '[' .. table.concat(newer, ',') .. ']'},
                           {'conversation', conv_json(c)}})
        end
    end
    local m = append(ctx, c, {kind = 'message', dir = 'out', author = a.author, text = a.text,
        attachments = a.attachments, client_id = a.client_id})
    c.msgs = tostring((tonumber(c.msgs) or 0) + 1)
    c.last_message_at = tostring(ctx.now)
    local first_ms
    if a.author.type == 'staff' then
        local wait = c.awaiting_since ~= '' and ctx.now - tonumber(c.awaiting_since) or 0
        if c.awaiting_since ~= '' then -- a response time sample for honest wait estimates
            redis.call('XADD', ctx.pre .. 'rt', 'MAXLEN', '~', 1000, '*',
                       'ms', wait, 'channel', c.channel,
                       'first', c.first_response_at == '' and '1' or '0')
        end
        local policy = policy_of(ctx, c)
        if c.first_response_at == '' and c.awaiting_since ~= '' then
            first_ms = wait
            fact(ctx, {'t', 'first', 'ms', wait, 'channel', c.channel, 'policy', policy,
                       'staff', a.author.id, 'conv', c.id})
        end
        fact(ctx, {'t', 'answer', 'ms', wait, 'channel', c.channel, 'policy', policy,
                   'staff', a.author.id, 'conv', c.id})
        c.awaiting_since = ''
        if c.first_response_at == '' then c.first_response_at = tostring(ctx.now) end
    end
    if has_outbox(c.channel) then
        redis.call('XADD', ctx.pre .. 'outbox:' .. c.channel, '*', 'conv', c.id, 'm', m.json)
        -- its delivery state from the start (the dlv:<cid> layout below): the first outcome
        -- then finds the message by its seq instead of searching the transcript
        redis.call('HSET', ctx.pre .. 'dlv:' .. c.id, m.id, cjson.encode({mid = m.id,
            seq = m.seq, channel = c.channel, account = '', state = 'pending', final = false,
            attempts = 0, retries = 0, updated_at = ctx.now}))
    end
    return post_finish(ctx, c, m, dk, a, first_ms)
end

-- note: an internal note (never sent to the customer).
local function note(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx, c, dk = post_start(a)
    if not ctx then return c end
    local m = append(ctx, c, {kind = 'note', dir = 'internal', author = a.author, text = a.text,
        client_id = a.client_id})
    return post_finish(ctx, c, m, dk, a)
end

-- State changes: claim, release, assign, resolve, reopen, snooze, priority, tags, handoff.
local ACTIONS = {}

function ACTIONS.claim(ctx, c, a)
    if c.assignee == a.author.id then return nil end
    if c.assignee ~= '' and a.steal ~= true then -- only JSON true steals
        return err('CONFLICT', 'held by ' .. c.assignee)
    end
    if c.assignee ~= '' and not a.admin then
        return err('FORBIDDEN', 'only admins may steal a claim held by ' .. c.assignee)
    end
    local prev = c.assignee
    c.assignee = a.author.id
    return event_entry(ctx, c, 'claimed', a.author, {assignee = a.author.id,
                       previous = nz(prev)})
end

function ACTIONS.release(ctx, c, a)
    if c.assignee == '' then return nil end
    if c.assignee ~= a.author.id and not a.admin then
        return err('FORBIDDEN', 'held by ' .. c.assignee)
    end
    local prev = c.assignee
    c.assignee = ''
    return event_entry(ctx, c, 'released', a.author, {previous = prev})
end

-- assign: hand the conversation to a staff member (a.to, a staff id the gateway checked is
-- on duty for the channel), or to nobody (a.to absent). Anyone the gateway lets act may
-- assign; the queue and SLA fields stay as they are (an assigned conversation still awaits
-- its answer). The event says who had it, who has it now and who made the change.
function ACTIONS.assign(ctx, c, a)
    local to = type(a.to) == 'string' and a.to or ''
    if c.assignee == to then return nil end
    local from = c.assignee
    c.assignee = to
    return event_entry(ctx, c, 'assigned', a.author, {from = nz(from), to = nz(to),
                       by = a.author.id or cjson.null})
end

function ACTIONS.resolve(ctx, c, a)
    if c.status == 'resolved' then return nil end
    fact(ctx, {'t', 'resolved', 'ms', ctx.now - (tonumber(c.created_at) or ctx.now),
               'channel', c.channel, 'policy', policy_of(ctx, c),
               'staff', a.author.type == 'staff' and a.author.id or '', 'conv', c.id})
    c.status = 'resolved'
    c.resolved_at = tostring(ctx.now)
    c.awaiting_since = ''
    c.snooze_until = ''
    return event_entry(ctx, c, 'resolved', a.author)
end

function ACTIONS.reopen(ctx, c, a)
    if c.status == 'open' then return nil end
    local from = c.status
    c.status = 'open'
    c.resolved_at = ''
    c.snooze_until = ''
    return event_entry(ctx, c, 'reopened', a.author, {from = from})
end

-- pending: waiting on the customer (SLA clocks pause); their next message opens it again.
function ACTIONS.pending(ctx, c, a)
    if c.status == 'pending' then return nil end
    if c.status == 'resolved' then
        return err('CONFLICT', 'conversation ' .. c.id .. ' is resolved: reopen it first')
    end
    local from = c.status
    c.status = 'pending'
    c.snooze_until = ''
    return event_entry(ctx, c, 'pending', a.author, {from = from})
end

function ACTIONS.snooze(ctx, c, a)
    local until_ms = tonumber(a['until'])
    if not until_ms or until_ms <= ctx.now then
        return err('INVAL', 'until must be a future time in ms')
    end
    c.status = 'snoozed'
    c.snooze_until = tostring(until_ms)
    return event_entry(ctx, c, 'snoozed', a.author, {['until'] = until_ms})
end

function ACTIONS.priority(ctx, c, a)
    local p = a.priority
    if p ~= 'low' and p ~= 'normal' and p ~= 'high' and p ~= 'urgent' then
        return err('INVAL', 'priority must be low, normal, high or urgent')
    end
    if c.priority == p then return nil end
    local prev = c.priority
    c.priority = p
    return event_entry(ctx, c, 'priority', a.author, {priority = p, previous = prev})
end

function ACTIONS.tags(ctx, c, a)
    local tags = a.tags
    if type(tags) ~= 'table' then return err('INVAL', 'tags must be an array of strings') end
    for _, t in ipairs(tags) do
        if type(t) ~= 'string' then return err('INVAL', 'tags must be strings') end
    end
    c.tags = #tags > 0 and cjson.encode(tags) or '[]'
    return event_entry(ctx, c, 'tagged', a.author, {tags = #tags > 0 and tags or EMPTY})
end

-- handoff: a bot passes the conversation to humans: open, and awaiting a staff reply.
function ACTIONS.handoff(ctx, c, a)
    local from = c.status
    if from ~= 'open' then
        c.status = 'open'
        c.resolved_at = ''
        c.snooze_until = ''
    end
    if c.awaiting_since == '' then c.awaiting_since = tostring(ctx.now) end
    local reason = type(a.reason) == 'string' and a.reason or nil
    return event_entry(ctx, c, 'handoff', a.author,
                       {reason = reason, from = from ~= 'open' and from or nil})
end

local function act(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx = context(a)
    local c = load_conv(ctx, a.conv)
    if not c then return err('NOTFOUND', 'no conversation ' .. a.conv) end
    local f = ACTIONS[a.action]
    if not f then return err('INVAL', 'unknown action ' .. tostring(a.action)) end
    local r = f(ctx, c, a)
    if type(r) == 'table' and r.err then return r end
    local cj = commit(ctx, c)
    return result({{'changed', bool(r)}, {'event', r and r.json or 'null'},
                   {'conversation', conv_json(c)}})
end

-- get: a conversation's state (read only).
local function get(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx = context(a)
    local c = load_conv(ctx, a.conv)
    if not c then return err('NOTFOUND', 'no conversation ' .. a.conv) end
    return conv_json(c)
end

-- latest: the contact's latest conversation on a channel (its full state), or null.
local function latest(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx = {pre = a.prefix .. '{' .. a.shard .. '}:'}
    local cid = redis.call('HGET', ctx.pre .. 'cl:' .. a.contact, a.channel)
    local c = cid and load_conv(ctx, cid)
    if not c then return 'null' end
    return conv_json(c)
end

-- conv_call: the arguments and context of a read of one conversation, or the NOTFOUND
-- error (third result) when it does not exist.
local function conv_call(argv)
    local a = cjson.decode(argv[1])
    local ctx = context(a)
    if redis.call('EXISTS', conv_key(ctx, a.conv)) == 0 then
        return nil, nil, err('NOTFOUND', 'no conversation ' .. a.conv)
    end
    return a, ctx
end

-- messages: a page of the transcript after `after` (exclusive), oldest first.
local function messages(keys, argv)
    local a, ctx, e = conv_call(argv)
    if e then return e end
    local start = '-'
    if a.after and a.after ~= '' and a.after ~= '0' then start = '(' .. a.after end
    local limit = tonumber(a.limit) or 100
    local r = redis.call('XRANGE', log_key(ctx, a.conv), start, '+', 'COUNT', limit + 1)
    local items = {}
    for i = 1, math.min(#r, limit) do items[i] = r[i][2][2] end
    local nxt = 'null'
    if #r > limit then nxt = '"' .. r[limit][1] .. '"' end
    return '{"items":[' .. table.concat(items, ',') .. '],"next":' .. nxt .. '}'
end

-- public_page: the newest customer-visible entries (kind "message") of a transcript
-- between a.after and a.before (both exclusive, optional), returned oldest first: at most
-- a.limit of them and about a.max_bytes of JSON (always at least one). Scans at most
-- 2000 entries per call, so a transcript full of notes cannot stall Redis. "next" is the
-- `before` for the next older page, null when nothing older is left in the range.
local function public_page(keys, argv)
    local a, ctx, e = conv_call(argv)
    if e then return e end
    local hi, lo = '+', '-'
    if a.before and a.before ~= '' then hi = '(' .. a.before end
    if a.after and a.after ~= '' and a.after ~= '0' then lo = '(' .. a.after end
    local limit = tonumber(a.limit) or 50
    local max_bytes = tonumber(a.max_bytes) or 262144
    local items, bytes, scanned, nxt = {}, 0, 0, nil
    while not nxt do
        local r = redis.call('XREVRANGE', log_key(ctx, a.conv), hi, lo, 'COUNT', 100)
        for i = 1, #r do
            local json = r[i][2][2]
            -- the first "kind" is the entry's own (msg_head writes it before any content)
            if string.match(json, ',"kind":"(%a+)"') == 'message' then
                if #items >= limit or (#items > 0 and bytes + #json > max_bytes) then
                    nxt = items[#items].seq
                    break
                end
                items[#items + 1] = {seq = r[i][1], json = json}
                bytes = bytes + #json
            end
            scanned = scanned + 1
            if scanned >= 2000 and i < #r then
                nxt = r[i][1]
                break
            end
        end
        if #r < 100 then break end
        if not nxt then hi = '(' .. r[#r][1] end
    end
    local out = {}
    for i = #items, 1, -1 do out[#out + 1] = items[i].json end
    local more = 'null'
    if nxt then more = '"' .. nxt .. '"' end
    return '{"items":[' .. table.concat(out, ',') .. '],"next":' .. more .. '}'
end

-- wake: snoozed conversations whose time has come go back to open and to the queue, each
-- with a `woke` event. ZRANGE and ZREM run in one call: exactly once across nodes. At most
-- #ids per call (one event id each); "more" says another call has work.
local function wake(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx = context(a)
    local key = ctx.pre .. 'snoozed'
    -- The ingest hot path appends events without trimming; this once-a-second call does.
    redis.call('XTRIM', ctx.pre .. 'events', 'MAXLEN', '~', ctx.maxlen)
    local due = redis.call('ZRANGE', key, '-inf', ctx.now, 'BYSCORE', 'LIMIT', 0, #ctx.ids)
    local woke = {}
    for _, cid in ipairs(due) do
        redis.call('ZREM', key, cid)
        local c = load_conv(ctx, cid)
        if c and c.status == 'snoozed' then
            ctx.events = {}
            local due_at = tonumber(c.snooze_until)
            c.status = 'open'
            c.snooze_until = ''
            if c.awaiting_since == '' then c.awaiting_since = tostring(ctx.now) end
            event_entry(ctx, c, 'woke', nil, {['until'] = due_at})
            commit(ctx, c)
            woke[#woke + 1] = '"' .. cid .. '"'
        end
    end
    return '{"woke":[' .. table.concat(woke, ',') .. '],"more":' .. bool(#due == #ctx.ids) .. '}'
end

-- list: one shard's page of a cross-shard conversation list (core/store_shards.c merges).
-- a.phases: the indexes to walk in order, {k = name, desc = bool}; a.cursor: {phase
-- (1-based), score, id} to continue after; filters a.assignee ('' = unassigned) and
-- a.channel. Returns up to limit+1 items [phase, score, id, conversation], and `upto`:
-- the position through which the answer is complete (null when the shard is exhausted).
local function list(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx = {pre = a.prefix .. '{' .. a.shard .. '}:'}
    local want, budget = a.limit + 1, a.budget or 500
    local cur = a.cursor
    local items, scanned = {}, 0
    for pi = cur and cur[1] or 1, #a.phases do
        local ph = a.phases[pi]
        local key = ctx.pre .. ph.k
        local from = cur and cur[1] == pi and cur[2]
        local lo = from and string.format('%d', from) -- no %.14g rounding of big scores
        local offset = 0
        while true do
            local r
            if ph.desc then
                r = redis.call('ZRANGE', key, lo or '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT',
                               offset, 100, 'WITHSCORES')
            else
                r = redis.call('ZRANGE', key, lo or '-inf', '+inf', 'BYSCORE', 'LIMIT', offset,
                               100, 'WITHSCORES')
            end
            offset = offset + #r / 2
            for i = 1, #r, 2 do
                local id, score = r[i], tonumber(r[i + 1])
                local seen = from and score == from and
                    ((ph.desc and id >= cur[3]) or (not ph.desc and id <= cur[3]))
                if not seen then
                    scanned = scanned + 1
                    local c = load_conv(ctx, id)
                    if c and (not a.channel or c.channel == a.channel) and
                        (not a.assignee or c.assignee == a.assignee) then
                        items[#items + 1] = string.format('[%d,%d,"%s",%s]', pi, score, id,
                                                          conv_json(c))
                    end
                    if #items >= want or scanned >= budget then
                        return '{"items":[' .. table.concat(items, ',') .. '],"upto":' ..
                               string.format('[%d,%d,"%s"]', pi, score, id) .. '}'
                    end
                end
            end
            if #r < 200 then break end
        end
    end
    return '{"items":[' .. table.concat(items, ',') .. '],"upto":null}'
end

-- contact_convs: a contact's conversations in this shard, newest first (at most 1000).
local function contact_convs(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx = {pre = a.prefix .. '{' .. a.shard .. '}:'}
    local ids = redis.call('ZRANGE', ctx.pre .. 'cc:' .. a.contact, 0, 999, 'REV')
    local out = {}
    for _, cid in ipairs(ids) do
        local c = load_conv(ctx, cid)
        if c then out[#out + 1] = conv_json(c) end
    end
    return '[' .. table.concat(out, ',') .. ']'
end

-- Points cl:<into> at the newer of its and cl:<from>'s conversation on every channel.
local function merge_latest(ctx, from, into)
    local cl_from, cl_into = ctx.pre .. 'cl:' .. from, ctx.pre .. 'cl:' .. into
    local cc = ctx.pre .. 'cc:' .. into
    local r = redis.call('HGETALL', cl_from)
    for i = 1, #r, 2 do
        local cur = redis.call('HGET', cl_into, r[i])
        local cur_t = cur and tonumber(redis.call('ZSCORE', cc, cur))
        local new_t = tonumber(redis.call('ZSCORE', cc, r[i + 1]))
        if new_t and (not cur_t or new_t > cur_t) then
            redis.call('HSET', cl_into, r[i], r[i + 1])
        end
    end
    redis.call('DEL', cl_from)
end

-- merge: moves contact a.from's conversations of this shard to contact a.into, each
-- with a `merged` event; at most #ids per call ("more" says call again). Idempotent: a
-- moved conversation is no longer in cc:<from>, so a retry never moves it twice.
local function merge(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx = context(a)
    local cc_from, cc_into = ctx.pre .. 'cc:' .. a.from, ctx.pre .. 'cc:' .. a.into
    local r = redis.call('ZRANGE', cc_from, 0, #ctx.ids - 1, 'WITHSCORES')
    local moved = {}
    for i = 1, #r, 2 do
        local cid = r[i]
        local c = load_conv(ctx, cid)
        if c then
            ctx.events = {}
            c.contact_id = a.into
            if a.name and a.name ~= '' then c.contact_name = a.name end
            event_entry(ctx, c, 'merged', a.author, {from = a.from, into = a.into})
            commit(ctx, c)
            moved[#moved + 1] = '"' .. cid .. '"'
        end
        redis.call('ZADD', cc_into, r[i + 1], cid)
        redis.call('ZREM', cc_from, cid)
    end
    local more = redis.call('EXISTS', cc_from) == 1
    local latest = {}
    if not more then
        merge_latest(ctx, a.from, a.into)
        local l = redis.call('HGETALL', ctx.pre .. 'cl:' .. a.into)
        for i = 1, #l, 2 do latest[#latest + 1] = cjson.encode(l[i]) .. ':"' .. l[i + 1] .. '"' end
    end
    return '{"moved":[' .. table.concat(moved, ',') .. '],"more":' .. bool(more) ..
           ',"latest":{' .. table.concat(latest, ',') .. '}}'
end

-- link_latest: after a merge, the contact's latest conversation per channel that lives in
-- other shards, recorded in its own shard's cl: where it has none there; ingest then
-- redirects the customer's next message to it ({"redirect":cid}).
local function link_latest(keys, argv)
    local a = cjson.decode(argv[1])
    local key = a.prefix .. '{' .. a.shard .. '}:cl:' .. a.contact
    for ch, cid in pairs(a.latest) do redis.call('HSETNX', key, ch, cid) end
    return '{}'
end

-- stats: the shard's index sizes, per-channel counts and recent first-response times.
local function stats(keys, argv)
    local a = cjson.decode(argv[1])
    local pre = a.prefix .. '{' .. a.shard .. '}:'
    local p = {}
    for _, k in ipairs({'queue', 'idle', 'pending', 'snoozed', 'resolved'}) do
        p[#p + 1] = '"' .. k .. '":' .. redis.call('ZCARD', pre .. k)
    end
    local counts = {}
    local r = redis.call('HGETALL', pre .. 'counts')
    for i = 1, #r, 2 do counts[#counts + 1] = cjson.encode(r[i]) .. ':' .. tonumber(r[i + 1]) end
    local rt = {}
    local s = redis.call('XREVRANGE', pre .. 'rt', '+', '-', 'COUNT', a.samples or 1000)
    for _, e in ipairs(s) do
        local f = {}
        for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
        if f.first == '1' and tonumber(f.ms) then
            rt[#rt + 1] = '[' .. tonumber(f.ms) .. ',' .. cjson.encode(f.channel or '') .. ']'
        end
    end
    return '{' .. table.concat(p, ',') .. ',"counts":{' .. table.concat(counts, ',') ..
           '},"first_response":[' .. table.concat(rt, ',') .. ']}'
end

-- presence: staff member <sid> on node <node> joins or leaves (KEYS[1] = <prefix>presence,
-- one field "<sid>@<node>" per staff member and node, value JSON with "exp"). ARGV:
-- "join"|"leave", field, value, now. Returns 1 when another node still has this staff
-- member online (then no presence event is due), else 0.
local function presence(keys, argv)
    if argv[1] == 'join' then
        redis.call('HSET', keys[1], argv[2], argv[3])
    else
        redis.call('HDEL', keys[1], argv[2])
    end
    local sid = string.match(argv[2], '^(.*)@')
    local now = tonumber(argv[4])
    local all = redis.call('HGETALL', keys[1])
    for i = 1, #all, 2 do
        if all[i] ~= argv[2] and string.sub(all[i], 1, #sid + 1) == sid .. '@' then
            local exp = tonumber(string.match(all[i + 1], '"exp":(%d+)'))
            if exp and exp > now then return 1 end
        end
    end
    return 0
end

-- ---- SLA timers (docs/sla.md "Functions") ----

-- A step's targets with `assignee` made the assignee's id (everyone when nobody holds it).
local function step_targets(targets, assignee)
    local out, seen = {}, {}
    for _, t in ipairs(type(targets) == 'table' and targets or {}) do
        if t == 'assignee' then t = assignee ~= '' and assignee or 'everyone' end
        if type(t) == 'string' and not seen[t] then
            seen[t] = true
            out[#out + 1] = t
        end
    end
    return arr(out)
end

-- Fires c's planned steps that are due: an event each, once per "<clock>:<gen>:<percent>".
-- Returns how many fired and when the next one is due (nil: none left).
local function sla_fire(ctx, c, k)
    ctx.events = {}
    local n, rest, next_at, breach = 0, {}, nil, false
    for _, st in ipairs(k.steps) do
        local fk = st.clock .. ':' .. st.gen .. ':' .. st.percent
        if k.fired[fk] then
            -- fired already (a plan made before it fired, applied after)
        elseif st.at <= ctx.now then
            k.fired[fk] = 1
            if ctx.late then ctx.late[#ctx.late + 1] = string.format('%d', ctx.now - st.at) end
            local etype = st.percent < 100 and 'sla_warning' or
                (st.percent == 100 and 'sla_breach' or 'escalated')
            -- (subject and customer: whom it is about, for notifications read without the
            -- conversation)
            event_entry(ctx, c, etype, nil, {clock = st.clock, percent = st.percent,
                policy = k.policy or cjson.null, due = k.due[st.clock] or cjson.null,
                targets = step_targets(st.targets, c.assignee),
                subject = c.subject ~= '' and c.subject or nil,
                customer = c.contact_name ~= '' and c.contact_name or nil})
            if st.percent == 100 then
                local known = false
                for _, b in ipairs(k.breaches) do known = known or b == st.clock end
                if not known then k.breaches[#k.breaches + 1] = st.clock end
                breach = true
                redis.call('HINCRBY', ctx.pre .. 'counts', 'breaches', 1)
                fact(ctx, {'t', 'breach', 'clock', st.clock, 'channel', c.channel,
                           'policy', k.policy or '', 'conv', c.id})
            end
            n = n + 1
        else
            rest[#rest + 1] = st
            if not next_at or st.at < next_at then next_at = st.at end
        end
    end
    k.steps = rest
    if n > 0 then
        c._k = k
        commit(ctx, c)
        k_save(ctx, c.id, k)
        if breach then o_save(ctx, c.id, k) end
    end
    return n, next_at
end

-- The facts of a conversation to plan (core/sla.h sb_sla_plan_json).
local function plan_state(c, k)
    local clocks = {}
    for name, cl in pairs(k.clocks) do
        clocks[#clocks + 1] = cjson.encode(name) .. ':' .. encode({gen = cl.gen, used = cl.used or 0,
            segs = arr(cl.segs or {}), since = cl.since or cjson.null, done = cl.done == true})
    end
    return table.concat({'{"conv":"', c.id, '","rev":', string.format('%d', k.rev or 0),
        ',"channel":"', c.channel, '","priority":"', c.priority, '","status":"', c.status,
        '","assignee":', jq(c.assignee), ',"clocks":{', table.concat(clocks, ','),
        '},"fired":', next(k.fired) and cjson.encode(k.fired) or '{}', '}'})
end

-- sla_tick: the shard's conversations whose SLA work is due: dirty ones come back to be
-- planned (and are leased for 5 s), planned steps that are due fire.
local function sla_tick(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx = context(a)
    local z = ctx.pre .. 'sla'
    local due = redis.call('ZRANGE', z, '-inf', ctx.now, 'BYSCORE', 'LIMIT', 0,
                           tonumber(a.limit) or 200)
    local plans, fired, more = {}, 0, #due == (tonumber(a.limit) or 200)
    ctx.late = {} -- how late each step fired (ms), for the engine's histogram
    for _, cid in ipairs(due) do
        local c, k = load_conv_k(ctx, cid)
        if not c or k.rev == 0 then
            redis.call('ZREM', z, cid)
        elseif k.dirty then
            plans[#plans + 1] = plan_state(c, k)
            redis.call('ZADD', z, ctx.now + 5000, cid)
        else
            -- each event needs an id from the caller: stop when they would run out
            local need = 0
            for _, st in ipairs(k.steps) do
                if st.at <= ctx.now then need = need + 1 end
            end
            if need > #ctx.ids - ctx.nid then
                more = true
                break
            end
            local n, next_at = sla_fire(ctx, c, k)
            fired = fired + n
            if next_at then redis.call('ZADD', z, next_at, cid) else redis.call('ZREM', z, cid) end
        end
    end
    return '{"plan":[' .. table.concat(plans, ',') .. '],"fired":' .. fired ..
           ',"late":[' .. table.concat(ctx.late, ',') .. '],"more":' .. bool(more) .. '}'
end

-- sla_set: stores plans (docs/sla.md "Plan") whose rev still matches; {"applied":N}.
local function sla_set(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx = context(a)
    local z = ctx.pre .. 'sla'
    local applied = 0
    for _, p in ipairs(a.plans or {}) do
        local c, k
        if type(p.conv) == 'string' then c, k = load_conv_k(ctx, p.conv) end
        if k and k.dirty and k.rev == p.rev then
            for name, f in pairs(type(p.fold) == 'table' and p.fold or {}) do
                local cl = k.clocks[name]
                local n = tonumber(f.n) or 0
                if cl and n > 0 and n <= #cl.segs then
                    local segs = {}
                    for i = n + 1, #cl.segs do segs[#segs + 1] = cl.segs[i] end
                    cl.segs = segs
                    cl.used = tonumber(f.used) or cl.used
                end
            end
            k.policy = p.policy ~= cjson.null and p.policy or nil
            k.due = {}
            for name, d in pairs(type(p.due) == 'table' and p.due or {}) do
                if d ~= cjson.null then k.due[name] = d end
            end
            k.paused = p.paused == true
            k.steps = {}
            local next_at
            for _, st in ipairs(type(p.steps) == 'table' and p.steps or {}) do
                local fk = tostring(st.clock) .. ':' .. tostring(st.gen) .. ':' .. tostring(st.percent)
                if not k.fired[fk] and tonumber(st.at) then
                    k.steps[#k.steps + 1] = {at = st.at, clock = st.clock, gen = st.gen,
                        percent = st.percent,
                        targets = type(st.targets) == 'table' and st.targets or {}}
                    if not next_at or st.at < next_at then next_at = st.at end
                end
            end
            k.dirty = false
            k_save(ctx, c.id, k)
            o_save(ctx, c.id, k)
            if next_at then redis.call('ZADD', z, next_at, c.id) else redis.call('ZREM', z, c.id) end
            if index_of(c.status, c.awaiting_since) == 'queue' then
                local q = tonumber(p.queue_at)
                redis.call('ZADD', ctx.pre .. 'queue', q or queue_score(c.awaiting_since, c.priority), c.id)
            end
            applied = applied + 1
        end
    end
    return '{"applied":' .. applied .. '}'
end

redis.register_function('sb_sla_tick', sla_tick)
redis.register_function('sb_sla_set', sla_set)
redis.register_function('sb_ingest', ingest)
redis.register_function('sb_reply', reply)
redis.register_function('sb_note', note)
redis.register_function('sb_act', act)
redis.register_function{function_name = 'sb_get', callback = get, flags = {'no-writes'}}
redis.register_function{function_name = 'sb_latest', callback = latest, flags = {'no-writes'}}
redis.register_function{function_name = 'sb_messages', callback = messages, flags = {'no-writes'}}
redis.register_function{function_name = 'sb_public_page', callback = public_page,
                        flags = {'no-writes'}}
redis.register_function('sb_wake', wake)
redis.register_function('sb_merge', merge)
redis.register_function('sb_link_latest', link_latest)
redis.register_function('sb_presence', presence)
redis.register_function{function_name = 'sb_list', callback = list, flags = {'no-writes'}}
redis.register_function{function_name = 'sb_contact_convs', callback = contact_convs,
                        flags = {'no-writes'}}
redis.register_function{function_name = 'sb_stats', callback = stats, flags = {'no-writes'}}

-- ---- Delivery outcomes (core/store_delivery.c; docs/delivery.md) ----
--
-- dlv:<cid> (hash, same shard as the conversation): message id -> that outbound message's
-- delivery state, JSON {"mid","seq","channel","account","state":"delivered"|"failed"|
-- "pending","final","reason","provider_id","retry_at","attempts","retries","updated_at"}.
-- seq finds the message in log:<cid>: all a retry needs to put it back in outbox:<channel>.

local function dlv_key(ctx, cid) return ctx.pre .. 'dlv:' .. cid end

-- How far back a scan looks for a message that has no delivery state yet.
local DLV_SCAN = 5000

-- Finds message mid in the transcript, newest first (at most DLV_SCAN entries): its seq
-- (for replies stored before reply began writing their pending state)
-- and whether it is an outbound message (kind message, dir out), or nil.
local function find_message(ctx, cid, mid)
    local head = '{"id":"' .. mid .. '"'
    local hi, scanned = '+', 0
    while scanned < DLV_SCAN do
        local r = redis.call('XREVRANGE', log_key(ctx, cid), hi, '-', 'COUNT', 200)
        for _, e in ipairs(r) do
            local json = e[2][2]
            if string.sub(json, 1, #head) == head then
                -- the first kind and dir are the entry's own (msg_head writes them first)
                return e[1], string.match(json, ',"kind":"(%a+)"') == 'message' and
                    string.match(json, ',"dir":"(%a+)"') == 'out'
            end
        end
        scanned = scanned + #r
        if #r < 200 then break end
        hi = '(' .. r[#r][1]
    end
    return nil
end

local function dlv_get(ctx, cid, mid)
    local s = redis.call('HGET', dlv_key(ctx, cid), mid)
    return s and cjson.decode(s) or nil
end

local function dlv_put(ctx, cid, st)
    st.updated_at = ctx.now
    local json = cjson.encode(st)
    redis.call('HSET', dlv_key(ctx, cid), st.mid, json)
    return json
end

-- The arguments every delivery function checks: ids and channel go into JSON by hand.
local function delivery_args(argv)
    local a, ctx, e = conv_call(argv)
    if e then return nil, nil, e end
    if type(a.mid) ~= 'string' or not string.match(a.mid, '^m_[%w]+$') then
        return nil, nil, err('INVAL', 'bad message id')
    end
    return a, ctx
end

-- When a failure that is not final is tried again (ms), or null: final, or no time known
-- (a paused account waits for its resume, not for a time).
local function retry_time(a, final)
    local t = tonumber(a.retry_at)
    if final or not t or t <= 0 then return cjson.null end
    return t
end

-- delivery_record: the outcome of one delivery attempt of an outbound message, as a
-- `delivered` or `delivery_failed` event in the transcript and the message's delivery
-- state. Idempotent where a crash between recording and XACK repeats an outcome: a
-- message already delivered, or already failed for good when this is another final
-- failure, records nothing ({"recorded":false,"state":…}).
local function delivery_record(keys, argv)
    local a, ctx, e = delivery_args(argv)
    if e then return e end
    if type(a.channel) ~= 'string' or not string.match(a.channel, '^[%w_%-]+$') then
        return err('INVAL', 'bad channel')
    end
    local st = dlv_get(ctx, a.conv, a.mid)
    local final = a.ok == true or a.final == true
    -- a bounce (a.bounce: the recipient's side gave up after the provider took the message)
    -- may follow a delivered; anything else stops at delivered or a final failure
    if st and ((st.state == 'delivered' and not a.bounce) or
               (st.state == 'failed' and st.final and final)) then
        return '{"recorded":false,"state":"' .. st.state .. '"}'
    end
    local seq, out = nil, false
    if st then seq, out = st.seq, true else seq, out = find_message(ctx, a.conv, a.mid) end
    if not seq or not out then
        return err('NOTFOUND', 'no outbound message ' .. a.mid .. ' in ' .. a.conv)
    end
    local c = load_conv(ctx, a.conv)
    local account = a.account ~= '' and a.account or nil
    local m
    if a.ok == true then
        m = event_entry(ctx, c, 'delivered', nil, {ref = a.mid, channel = a.channel,
            account = account, provider_id = nz(a.provider_id)})
    else
        m = event_entry(ctx, c, 'delivery_failed', nil, {ref = a.mid, channel = a.channel,
            account = account, reason = nz(a.reason), final = final,
            retry_at = retry_time(a, final), bounce = a.bounce == true or nil})
    end
    commit(ctx, c)
    local sj = dlv_put(ctx, a.conv, {mid = a.mid, seq = seq, channel = a.channel,
        account = nz(account), state = a.ok == true and 'delivered' or 'failed', final = final,
        reason = a.ok == true and cjson.null or nz(a.reason),
        provider_id = a.ok == true and nz(a.provider_id) or cjson.null,
        retry_at = retry_time(a, final),
        attempts = ((st and tonumber(st.attempts)) or 0) + 1,
        retries = (st and tonumber(st.retries)) or 0})
    return result({{'recorded', 'true'}, {'event', m.json}, {'state', sj}})
end

-- delivery_state: a message's delivery state, or null when it has none (read only).
local function delivery_state(keys, argv)
    local a, ctx, e = delivery_args(argv)
    if e then return e end
    return redis.call('HGET', dlv_key(ctx, a.conv), a.mid) or 'null'
end

-- delivery_retry: a message whose last outcome was a final failure goes back into
-- outbox:<channel> (the entry reply writes: conv <cid> m <message JSON>), its state to
-- pending, with a `delivery_retry` event by the person who asked. CONFLICT when it is not
-- in a final failure; UNAVAILABLE when no connector on the calling node serves its channel.
local function delivery_retry(keys, argv)
    local a, ctx, e = delivery_args(argv)
    if e then return e end
    local st = dlv_get(ctx, a.conv, a.mid)
    if not st then
        if find_message(ctx, a.conv, a.mid) then
            return err('CONFLICT', 'message ' .. a.mid .. ' has no failed delivery')
        end
        return err('NOTFOUND', 'no message ' .. a.mid .. ' in ' .. a.conv)
    end
    if st.state ~= 'failed' or st.final ~= true then
        return err('CONFLICT', 'message ' .. a.mid .. ' is ' ..
                   (st.state == 'failed' and 'still being retried' or st.state) ..
                   ', not failed for good')
    end
    if not serves(a, st.channel) or not has_outbox(st.channel) then
        return unavailable(st.channel)
    end
    local r = redis.call('XRANGE', log_key(ctx, a.conv), st.seq, st.seq)
    if #r == 0 then return err('NOTFOUND', 'no message ' .. a.mid .. ' in ' .. a.conv) end
    redis.call('XADD', ctx.pre .. 'outbox:' .. st.channel, '*', 'conv', a.conv, 'm', r[1][2][2])
    local c = load_conv(ctx, a.conv)
    local m = event_entry(ctx, c, 'delivery_retry', a.author, {ref = a.mid, channel = st.channel,
        account = st.account ~= cjson.null and st.account or nil})
    commit(ctx, c)
    st.state, st.final, st.reason, st.retry_at = 'pending', false, cjson.null, cjson.null
    st.retries = (tonumber(st.retries) or 0) + 1
    return result({{'state', dlv_put(ctx, a.conv, st)}, {'event', m.json}})
end

redis.register_function('sb_delivery_record', delivery_record)
redis.register_function{function_name = 'sb_delivery_state', callback = delivery_state,
                        flags = {'no-writes'}}
redis.register_function('sb_delivery_retry', delivery_retry)

-- ---- Web chat answers that go on by mail (core/store_followup.c; docs/email.md) ----
--
-- followup (zset, per shard): "<cid> <mid> <seq>" of a staff answer in a web chat, scored by
-- when it is due to go out by mail unless the visitor saw it first. seen (hash, per shard):
-- cid -> the seq of the newest message a visitor's widget showed.

local function seq_parts(s)
    local ms, n = string.match(s or '', '^(%d+)%-?(%d*)$') -- "<ms>" or "<ms>-<n>"
    return tonumber(ms) or 0, tonumber(n) or 0
end

local function seq_le(a, b)
    local am, an = seq_parts(a)
    local bm, bn = seq_parts(b)
    return am < bm or (am == bm and an <= bn)
end

-- followup: op add (a.due, a.conv, a.mid, a.seq), seen (a.conv, a.seq), due (a.limit:
-- the due entries not seen, the seen ones dropped), send (the entry goes into
-- outbox:email, once: {"sent":b}) or drop.
local function followup(keys, argv)
    local a = cjson.decode(argv[1])
    local ctx = context(a)
    local z, seen = ctx.pre .. 'followup', ctx.pre .. 'seen'
    if a.op == 'seen' then
        local old = redis.call('HGET', seen, a.conv)
        if not old or not seq_le(a.seq, old) then redis.call('HSET', seen, a.conv, a.seq) end
        return '{}'
    end
    if a.op == 'due' then
        local out = {}
        local r = redis.call('ZRANGEBYSCORE', z, '-inf', ctx.now, 'LIMIT', 0, tonumber(a.limit) or 50)
        for _, member in ipairs(r) do
            local cid, mid, seq = string.match(member, '^(%S+) (%S+) (%S+)$')
            local s = cid and redis.call('HGET', seen, cid)
            if not cid or (s and seq_le(seq, s)) then
                redis.call('ZREM', z, member)
            else
                out[#out + 1] = '{"conv":"' .. cid .. '","mid":"' .. mid .. '","seq":"' .. seq .. '"}'
            end
        end
        return '{"due":[' .. table.concat(out, ',') .. ']}'
    end
    local member = a.conv .. ' ' .. a.mid .. ' ' .. a.seq
    if a.op == 'add' then
        redis.call('ZADD', z, 'NX', a.due, member)
        return '{}'
    end
    local removed = redis.call('ZREM', z, member)
    if a.op ~= 'send' or removed == 0 then return '{"sent":false}' end
    local r = redis.call('XRANGE', log_key(ctx, a.conv), a.seq, a.seq)
    if #r == 0 then return '{"sent":false}' end
    redis.call('XADD', ctx.pre .. 'outbox:email', '*', 'conv', a.conv, 'm', r[1][2][2],
               'followup', '1')
    return '{"sent":true}'
end

redis.register_function('sb_followup', followup)

-- rejected: something addressed to this conversation was refused and never reached the
-- customer (a forged staff answer by mail, say): a `rejected` event with who sent it and
-- why, in the transcript and the feeds, changing nothing else.
local function rejected(keys, argv)
    local a, ctx, e = conv_call(argv)
    if e then return e end
    local c = load_conv(ctx, a.conv)
    local m = event_entry(ctx, c, 'rejected', a.author, {channel = a.channel,
        from = a.from, reason = a.reason})
    commit(ctx, c)
    return result({{'event', m.json}})
end

redis.register_function('sb_rejected', rejected)

-- ---- Who waits longest now (core/store_reports.c; docs/sla.md "Reports") ----

-- sb_waiting {limit, channel?, channels?}: of the first 5000 conversations of the shard's
-- queue, the `limit` (at most 200) whose customer has waited longest (oldest
-- awaiting_since), oldest first, each {conv, channel, contact_name, assignee, subject,
-- awaiting_since}. `channel` keeps one channel, `channels` (a list) a token's scope.
-- Read-only; registered without a local of its own, so the library's chunk does not
-- grow by one more local variable.
redis.register_function{function_name = 'sb_waiting', flags = {'no-writes'},
    callback = function(keys, argv)
        local a = cjson.decode(argv[1])
        local pre = a.prefix .. '{' .. a.shard .. '}:'
        local limit = math.min(tonumber(a.limit) or 20, 200)
        local allow
        if type(a.channels) == 'table' then
            allow = {}
            for _, ch in ipairs(a.channels) do allow[ch] = true end
        end
        local rows = {}
        for _, cid in ipairs(redis.call('ZRANGE', pre .. 'queue', 0, 4999)) do
            local s = redis.call('HGET', pre .. 'conv:' .. cid, 's')
            local c = s and conv_from(s)
            local since = c and tonumber(c.awaiting_since)
            if since and (type(a.channel) ~= 'string' or a.channel == c.channel) and
                (not allow or allow[c.channel]) then
                rows[#rows + 1] = {since, c}
            end
        end
        table.sort(rows, function(x, y) return x[1] < y[1] end)
        local out = {}
        for i = 1, math.min(limit, #rows) do
            local c = rows[i][2]
            out[i] = '{"conv":' .. js(c.id) .. ',"channel":' .. js(c.channel) ..
                     ',"contact_name":' .. js(c.contact_name) .. ',"assignee":' ..
                     js(c.assignee) .. ',"subject":' .. js(c.subject) ..
                     ',"awaiting_since":' .. string.format('%d', rows[i][1]) .. '}'
        end
        return '{"waiting":[' .. table.concat(out, ',') .. ']}'
    end}
