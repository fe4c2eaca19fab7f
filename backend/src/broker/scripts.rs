//! The Lua scripts the broker runs in Redis. Each runs atomically, so the
//! shared state it changes (the users hash, a room's sequence) and the
//! stream entry that announces the change can never disagree, and entries
//! are in the order the changes were made.
//!
//! Keys: `banter:events` (the stream), `banter:users` (lower-case nick →
//! [`UserRecord`](super::event::UserRecord) JSON), `banter:seq` (room →
//! last message id), `banter:direct` (last whisper id), `banter:clock`
//! (last time given, so times never go back), `banter:nodes` (the set of
//! nodes) and `banter:node:<id>` (a node's lease, expiring unless renewed).

pub const EVENTS: &str = "banter:events";
pub const USERS: &str = "banter:users";
pub const SEQ: &str = "banter:seq";
pub const DIRECT: &str = "banter:direct";
pub const CLOCK: &str = "banter:clock";
pub const NODES: &str = "banter:nodes";

/// The lease key of `node`.
pub fn lease(node: &str) -> String {
    format!("banter:node:{node}")
}

/// Shared by the scripts: `owner(key)`, the node a nick's record names, if
/// that node's lease is alive; `now()`, a time in Unix ms that never goes
/// back.
const COMMON: &str = r#"
local function owner(key)
  local v = redis.call('HGET', 'banter:users', key)
  if not v then return nil end
  local node = cjson.decode(v).node
  if redis.call('EXISTS', 'banter:node:' .. node) == 0 then return nil end
  return node
end
local function now()
  local t = redis.call('TIME')
  local ts = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local last = tonumber(redis.call('GET', 'banter:clock') or '0')
  if ts < last then ts = last end
  redis.call('SET', 'banter:clock', string.format('%d', ts))
  return ts
end
"#;

/// A local user's record changes. ARGV: key, record (empty: the user is
/// gone), the key it gives up (empty: none), `1` to claim the key (refused
/// while a live node holds it), this node, the event, the stream's length.
/// Answers 1, or 0 when refused (the key is taken, or, for an update, the
/// record is no longer this node's: it was reaped).
pub const USER: &str = r#"
local key, record, old, claim, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local holder = owner(key)
if claim == '1' then
  if holder and holder ~= node then return 0 end
elseif holder ~= node then
  return 0
end
if old ~= '' and owner(old) == node then redis.call('HDEL', 'banter:users', old) end
if record == '' then
  redis.call('HDEL', 'banter:users', key)
else
  redis.call('HSET', 'banter:users', key, record)
end
redis.call('XADD', 'banter:events', 'MAXLEN', '~', ARGV[7], '*', 'e', ARGV[6])
return 1
"#;

/// Room messages, one or more in a row (a batch is one call). ARGV: the
/// stream's length, `1` if the node has a store that knows its rooms'
/// last ids, then for each message its room, the highest id this node has
/// seen in it (ids continue above it even if Redis lost its sequence) and
/// the event. With a store, a message to a room without a sequence here
/// (Redis lost it, or never had it) is not numbered but answered {-1, 0},
/// so that the node seeds it ([`SEED`]) from the store first. Answers
/// {id, ts} for each message, in order, or the error of a message that
/// failed (it was not announced; the others were).
pub const SAY: &str = r#"
local len, seedable = ARGV[1], ARGV[2] == '1'
local ts, out = now(), {}
for i = 3, #ARGV, 3 do
  local room = ARGV[i]
  if seedable and redis.call('HEXISTS', 'banter:seq', room) == 0 then
    out[#out + 1] = {-1, 0}
  else
    -- A message that fails answers its error alone: those before it
    -- were announced (a script is not rolled back), those after it go on.
    local id = redis.pcall('HINCRBY', 'banter:seq', room, 1)
    if type(id) == 'table' then
      out[#out + 1] = id
    else
      local floor = tonumber(ARGV[i + 1])
      if id <= floor then
        id = floor + 1
        redis.call('HSET', 'banter:seq', room, string.format('%d', id))
      end
      local added = redis.pcall('XADD', 'banter:events', 'MAXLEN', '~', len, '*', 'e', ARGV[i + 2],
        'id', string.format('%d', id), 'ts', string.format('%d', ts))
      if type(added) == 'table' and added.err then
        out[#out + 1] = added
      else
        out[#out + 1] = {id, ts}
      end
    end
  end
end
return out
"#;

/// A whisper. ARGV: the target's key, the highest whisper id this node has
/// seen, the event, the stream's length, and `1` to be answered {-1, 0}
/// when there is no whisper sequence yet (as for [`SAY`]). The target's
/// node and away message are looked up here, in the same step. Answers
/// {id, ts}.
pub const DIRECT_MSG: &str = r#"
if ARGV[5] == '1' and redis.call('EXISTS', 'banter:direct') == 0 then return {-1, 0} end
local id = redis.call('INCR', 'banter:direct')
local floor = tonumber(ARGV[2])
if id <= floor then
  id = floor + 1
  redis.call('SET', 'banter:direct', string.format('%d', id))
end
local ts = now()
local fields = {'e', ARGV[3], 'id', string.format('%d', id), 'ts', string.format('%d', ts)}
local node = owner(ARGV[1])
local record = node and cjson.decode(redis.call('HGET', 'banter:users', ARGV[1]))
-- An always-on account with no device anywhere: its whispers wait.
if record and record.offline then node = nil end
if node then
  table.insert(fields, 'to')
  table.insert(fields, node)
  local away = record.away
  if type(away) == 'string' then
    table.insert(fields, 'away')
    table.insert(fields, away)
  end
end
redis.call('XADD', 'banter:events', 'MAXLEN', '~', ARGV[4], '*', unpack(fields))
return {id, ts}
"#;

/// Seeds a sequence from the store: ARGV: `room` and its name, or
/// `direct`; the highest id the store has. Never lowers it.
pub const SEED: &str = r#"
local value = tonumber(ARGV[3])
if ARGV[1] == 'room' then
  local current = tonumber(redis.call('HGET', 'banter:seq', ARGV[2]) or '0')
  if value > current then redis.call('HSET', 'banter:seq', ARGV[2], string.format('%d', value))
  elseif current == 0 then redis.call('HSET', 'banter:seq', ARGV[2], '0') end
else
  local current = tonumber(redis.call('GET', 'banter:direct') or '0')
  if value > current or redis.call('EXISTS', 'banter:direct') == 0 then
    redis.call('SET', 'banter:direct', string.format('%d', math.max(value, current)))
  end
end
return 1
"#;

/// Everything a node needs to start: the stream's last entry id and every
/// user record, at one instant. Answers {last id, {records...}}.
pub const SNAPSHOT: &str = r#"
local last = redis.call('XREVRANGE', 'banter:events', '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
return {id, redis.call('HVALS', 'banter:users')}
"#;

/// A node (re)states all its users, replacing its old records. ARGV: node,
/// the stream's length, then key and record pairs. A key that a live node
/// took meanwhile stays that node's. Announces a `sync` event with the
/// records kept and answers the keys refused.
pub const SYNC: &str = r#"
local node = ARGV[1]
local all = redis.call('HGETALL', 'banter:users')
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).node == node then redis.call('HDEL', 'banter:users', all[i]) end
end
local kept, refused = {}, {}
for i = 3, #ARGV, 2 do
  local holder = owner(ARGV[i])
  if holder and holder ~= node then
    table.insert(refused, ARGV[i])
  else
    redis.call('HSET', 'banter:users', ARGV[i], ARGV[i + 1])
    table.insert(kept, ARGV[i + 1])
  end
end
local event = '{"t":"sync","node":' .. cjson.encode(node) .. ',"users":[' .. table.concat(kept, ',') .. ']}'
redis.call('XADD', 'banter:events', 'MAXLEN', '~', ARGV[2], '*', 'e', event)
return refused
"#;

/// Removes a node whose lease expired: its records go, and the stream
/// says `lost`. ARGV: the node, the stream's length. Answers 1 if it did.
pub const REAP: &str = r#"
local node = ARGV[1]
if redis.call('EXISTS', 'banter:node:' .. node) == 1 then return 0 end
-- Another node reaped it first: once is enough.
if redis.call('SREM', 'banter:nodes', node) == 0 then return 0 end
local all = redis.call('HGETALL', 'banter:users')
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).node == node then redis.call('HDEL', 'banter:users', all[i]) end
end
redis.call('XADD', 'banter:events', 'MAXLEN', '~', ARGV[2], '*', 'e',
  '{"t":"lost","node":' .. cjson.encode(node) .. '}')
return 1
"#;

/// Renews this node's lease. ARGV: node, lease in ms. Answers whether the
/// lease was still alive (0: this node had been given up, or Redis lost
/// its data) and the members of the node set.
pub const HEARTBEAT: &str = r#"
local key = 'banter:node:' .. ARGV[1]
local alive = redis.call('EXISTS', key)
redis.call('SET', key, '1', 'PX', ARGV[2])
redis.call('SADD', 'banter:nodes', ARGV[1])
return {alive, redis.call('SMEMBERS', 'banter:nodes')}
"#;

/// The scripts, each with [`COMMON`] in front.
pub fn all() -> [(&'static str, String); 8] {
    [
        ("seed", format!("{COMMON}{SEED}")),
        ("user", format!("{COMMON}{USER}")),
        ("say", format!("{COMMON}{SAY}")),
        ("direct", format!("{COMMON}{DIRECT_MSG}")),
        ("snapshot", format!("{COMMON}{SNAPSHOT}")),
        ("sync", format!("{COMMON}{SYNC}")),
        ("reap", format!("{COMMON}{REAP}")),
        ("heartbeat", format!("{COMMON}{HEARTBEAT}")),
    ]
}
