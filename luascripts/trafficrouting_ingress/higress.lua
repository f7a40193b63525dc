-- Kruise Lanes higress ingress provider for Kruise Rollouts (lua.traffic.routing.ingress.higress).
-- Generated from lib/higress.profile.lua and lib/canary.lua by `make generate`; do not edit.
-- Open-source Higress (class type "higress"): canary keys under nginx.ingress.kubernetes.io/,
-- request header control and extra match conditions under higress.io/.
local PROVIDER = {
  name = "higress",
  headerControlPrefix = "higress.io/",
  queryPrefix = nil,
  matchPrefix = "higress.io/",
  serviceSubset = false,
}

-- Shared body of the Kruise Lanes ingress providers. It runs after a PROVIDER table (see the
-- generated header of each provider script) and follows Kruise Rollouts' ingress Lua contract:
-- the global `obj` holds `annotations` (those of the <ingress>-canary Ingress), `weight` (a
-- string, "-1" means no weight), `matches`, `canaryService` and `requestHeaderModifier`; the
-- script returns the complete annotation map of the canary Ingress.
--
-- Rules the data plane cannot express raise error(...): Kruise then reports the sentence in the
-- Rollout's or TrafficRouting's status message instead of programming a partial rule.

local NGINX = "nginx.ingress.kubernetes.io/"
local MSE = "mse.ingress.kubernetes.io/"
local HIGRESS = "higress.io/"
local OWNED = "kruise-lanes.io/owned-keys"
local PRESERVED = "kruise-lanes.io/preserved"
local LANE_HEADER = "kruise-lanes.io/lane-header"
-- The manager's --lane-header. The installer rewrites this one line (luascripts.WithDefaultLaneHeader)
-- so the script and the manager use the same default; keep it on a line of its own.
local DEFAULT_LANE_HEADER = "x-mse-tag"
local SUBSET = MSE .. "service-subset"

-- Canary keys that only a canary Ingress carries. They are removed on every run, including the
-- stale nginx-prefixed query keys that Kruise's own mse.lua writes, so nothing of an earlier step
-- (or of an earlier script) survives.
local CANARY_KEYS = {
  NGINX .. "canary-by-cookie",
  NGINX .. "canary-by-header",
  NGINX .. "canary-by-header-pattern",
  NGINX .. "canary-by-header-value",
  NGINX .. "canary-weight",
  NGINX .. "canary-by-query",
  NGINX .. "canary-by-query-pattern",
  NGINX .. "canary-by-query-value",
  MSE .. "canary-by-query",
  MSE .. "canary-by-query-pattern",
  MSE .. "canary-by-query-value",
}

local function fail(msg)
  error(PROVIDER.name .. " ingress provider: " .. msg, 0)
end

local function split(s, sep)
  local out = {}
  if s == nil or s == "" then
    return out
  end
  local start = 1
  while true do
    local i = string.find(s, sep, start, true)
    if i == nil then
      table.insert(out, string.sub(s, start))
      return out
    end
    table.insert(out, string.sub(s, start, i - 1))
    start = i + string.len(sep)
  end
end

local function list(v)
  if type(v) ~= "table" then
    return {}
  end
  return v
end

-- RFC 7230 token: the characters a header name may use.
local function isToken(s)
  return type(s) == "string" and s ~= "" and string.find(s, "^[A-Za-z0-9!#$%%&'*+%-%.%^_`|~]+$") ~= nil
end

local function checkName(what, name)
  if not isToken(name) then
    fail(string.format("%s %q is not a valid HTTP header name (RFC 7230 token)", what, tostring(name)))
  end
end

local function checkValue(what, name, value)
  if type(value) ~= "string" then
    fail(string.format("%s %q has no value", what, name))
  end
  if string.find(value, "\r", 1, true) or string.find(value, "\n", 1, true) or string.find(value, "\0", 1, true) then
    fail(string.format("%s %q has a value with CR, LF or NUL, which could smuggle a second header line", what, name))
  end
end

-- Exact value as a regular expression: escape what RE2 treats as syntax.
local function quoteRegex(s)
  return (string.gsub(s, "[%^%$%(%)%.%[%]%*%+%?%{%}%|\\]", "\\%0"))
end

-- Annotation key names (after the prefix) must be a DNS-label-like token of at most 63 chars.
local function checkAnnotationName(key, why)
  local slash = string.find(key, "/", 1, true)
  local name = string.sub(key, slash + 1)
  if string.len(name) > 63 or string.find(name, "^[A-Za-z0-9][A-Za-z0-9_.%-]*$") == nil or string.find(name, "[A-Za-z0-9]$") == nil then
    fail(string.format("%s needs annotation %q, which is not a valid annotation key", why, key))
  end
end

-- ---------------------------------------------------------------------------------------------
-- Bookkeeping: keys this script wrote on an earlier run are listed in OWNED and removed; values
-- the stable Ingress itself carried for a key we also write are kept in PRESERVED and restored,
-- so a user's own annotation is merged with, never replaced by, the lane's.
-- ---------------------------------------------------------------------------------------------
local annotations = {}
for k, v in pairs(list(obj.annotations)) do
  annotations[k] = v
end

for _, k in ipairs(split(annotations[OWNED], ",")) do
  annotations[k] = nil
end
annotations[OWNED] = nil
local preserved = {}
if annotations[PRESERVED] ~= nil and annotations[PRESERVED] ~= "" then
  local ok, decoded = pcall(json.decode, annotations[PRESERVED])
  if not ok or type(decoded) ~= "table" then
    fail(string.format("annotation %s is not valid JSON; restore it from the stable Ingress or delete the canary Ingress", PRESERVED))
  end
  preserved = decoded
end
annotations[PRESERVED] = nil
for k, v in pairs(preserved) do
  annotations[k] = v
end
for _, k in ipairs(CANARY_KEYS) do
  annotations[k] = nil
end

local owned = {}
local ownedList = {}

-- write sets a key the script owns. A key the stable Ingress already carries is preserved first.
local function write(key, value)
  if owned[key] == nil then
    if annotations[key] ~= nil and preserved[key] == nil then
      preserved[key] = annotations[key]
    end
    owned[key] = true
    table.insert(ownedList, key)
  end
  annotations[key] = value
end

-- ---------------------------------------------------------------------------------------------
-- Matches: each match is an AND of conditions; several matches are an OR.
-- ---------------------------------------------------------------------------------------------
local function conditionsOf(i, match)
  local conds = {}
  if match.path ~= nil then
    fail(string.format("match %d has a path condition; an ingress canary keeps the stable Ingress's paths and cannot narrow them", i))
  end
  for _, h in ipairs(list(match.headers)) do
    local typ = h.type or "Exact"
    if typ ~= "Exact" and typ ~= "RegularExpression" then
      fail(string.format("match %d header %q has type %q; only Exact and RegularExpression are supported", i, tostring(h.name), tostring(typ)))
    end
    checkValue("match header", h.name, h.value)
    if h.name == "canary-by-cookie" then
      if typ ~= "Exact" then
        fail(string.format("match %d: the canary-by-cookie pseudo-header names a cookie and takes no regular expression", i))
      end
      table.insert(conds, { kind = "cookie", name = h.value, type = typ, value = h.value })
    else
      checkName("match header", h.name)
      table.insert(conds, { kind = "header", name = h.name, type = typ, value = h.value })
    end
  end
  for _, q in ipairs(list(match.queryParams)) do
    local typ = q.type or "Exact"
    if typ ~= "Exact" and typ ~= "RegularExpression" then
      fail(string.format("match %d query parameter %q has type %q; only Exact and RegularExpression are supported", i, tostring(q.name), tostring(typ)))
    end
    if type(q.name) ~= "string" or q.name == "" then
      fail(string.format("match %d has a query parameter without a name", i))
    end
    checkValue("match query parameter", q.name, q.value)
    table.insert(conds, { kind = "query", name = q.name, type = typ, value = q.value })
  end
  if #conds == 0 then
    fail(string.format("match %d has no condition", i))
  end
  return conds
end

local function writeValueOrPattern(base, cond)
  if cond.type == "RegularExpression" then
    write(base .. "-pattern", cond.value)
  else
    write(base .. "-value", cond.value)
  end
end

local function extraMatchKey(cond)
  local typ = "exact"
  if cond.type == "RegularExpression" then
    typ = "regex"
  end
  return PROVIDER.matchPrefix .. typ .. "-match-" .. cond.kind .. "-" .. cond.name
end

-- One match: an AND of its conditions, where the data plane can express it.
local function applyAnd(conds)
  local headers, queries, cookies = {}, {}, {}
  for _, c in ipairs(conds) do
    if c.kind == "header" then
      table.insert(headers, c)
    elseif c.kind == "query" then
      table.insert(queries, c)
    else
      table.insert(cookies, c)
    end
  end
  if #cookies > 0 then
    if #cookies > 1 or #headers > 0 or #queries > 0 then
      fail("a canary-by-cookie condition cannot be combined with other conditions in one match: the ingress ranks cookie below header and query, it does not AND them")
    end
    write(NGINX .. "canary-by-cookie", cookies[1].value)
    return
  end
  if #headers > 0 then
    write(NGINX .. "canary-by-header", headers[1].name)
    writeValueOrPattern(NGINX .. "canary-by-header", headers[1])
  end
  local extra = {}
  for i = 2, #headers do
    table.insert(extra, headers[i])
  end
  if PROVIDER.queryPrefix ~= nil then
    if #queries > 1 then
      fail(string.format("the %s ingress matches at most one query parameter per rule; got %d (%s, %s, ...)", PROVIDER.name, #queries, queries[1].name, queries[2].name))
    end
    if #queries == 1 then
      write(PROVIDER.queryPrefix .. "canary-by-query", queries[1].name)
      writeValueOrPattern(PROVIDER.queryPrefix .. "canary-by-query", queries[1])
    end
  else
    for _, q in ipairs(queries) do
      table.insert(extra, q)
    end
  end
  if #extra == 0 then
    return
  end
  if PROVIDER.matchPrefix == nil then
    fail(string.format("the %s ingress matches one header per rule; the condition on %s %q cannot be ANDed with header %q", PROVIDER.name, extra[1].kind, extra[1].name, headers[1].name))
  end
  if #headers == 0 then
    fail(string.format("the %s ingress routes a canary by header, cookie or weight; a query parameter condition (%q) needs a header condition in the same match", PROVIDER.name, extra[1].name))
  end
  for _, c in ipairs(extra) do
    local key = extraMatchKey(c)
    checkAnnotationName(key, string.format("the condition on %s %q", c.kind, c.name))
    if annotations[key] ~= nil then
      fail(string.format("the condition on %s %q conflicts with annotation %s that the stable Ingress already carries", c.kind, c.name, key))
    end
    write(key, c.value)
  end
end

-- Several matches: expressible only as one condition on the same header (or query parameter),
-- which becomes a single regular expression alternation.
local function applyOr(all)
  local first = all[1][1]
  local alternatives = {}
  for i, conds in ipairs(all) do
    local c = conds[1]
    if #conds ~= 1 or c.kind ~= first.kind or c.name ~= first.name then
      fail(string.format("matches 1 and %d cannot be ORed by this ingress: several matches are expressible only when each is one condition on the same header or query parameter", i))
    end
    if c.type == "RegularExpression" then
      table.insert(alternatives, "(?:" .. c.value .. ")")
    else
      table.insert(alternatives, quoteRegex(c.value))
    end
  end
  if first.kind == "cookie" then
    applyAnd({ first })
    return
  end
  local merged = { kind = first.kind, name = first.name, type = "RegularExpression", value = table.concat(alternatives, "|") }
  applyAnd({ merged })
end

local matches = list(obj.matches)
if #matches > 0 then
  local all = {}
  for i, m in ipairs(matches) do
    table.insert(all, conditionsOf(i, m))
  end
  if #all == 1 then
    applyAnd(all[1])
  else
    applyOr(all)
  end
elseif obj.weight ~= nil and obj.weight ~= "-1" then
  -- Kruise's contract: matches take precedence over weight, so weight is used only without them.
  write(NGINX .. "canary-weight", obj.weight)
end

-- ---------------------------------------------------------------------------------------------
-- Request header control: set/add as "Name Value" lines, remove as a comma list, merged after any
-- lines the stable Ingress already carries.
-- ---------------------------------------------------------------------------------------------
local function headerLines(key, headers, what)
  local lines = {}
  local seen = {}
  for _, line in ipairs(split(annotations[key], "\n")) do
    if line ~= "" then
      table.insert(lines, line)
      local name = string.match(line, "^%s*(%S+)")
      if name ~= nil then
        seen[string.lower(name)] = line
      end
    end
  end
  local added = false
  for _, h in ipairs(headers) do
    checkName(what, h.name)
    checkValue(what, h.name, h.value)
    if h.value == "" then
      fail(string.format("%s %q has an empty value", what, h.name))
    end
    local line = h.name .. " " .. h.value
    local before = seen[string.lower(h.name)]
    if before == nil then
      table.insert(lines, line)
      seen[string.lower(h.name)] = line
      added = true
    elseif before ~= line then
      fail(string.format("%s %q conflicts with %q already in annotation %s", what, h.name, before, key))
    end
  end
  if added then
    write(key, table.concat(lines, "\n"))
  end
end

local modifier = obj.requestHeaderModifier
if type(modifier) == "table" then
  headerLines(PROVIDER.headerControlPrefix .. "request-header-control-update", list(modifier.set), "requestHeaderModifier.set header")
  headerLines(PROVIDER.headerControlPrefix .. "request-header-control-add", list(modifier.add), "requestHeaderModifier.add header")
  local removeKey = PROVIDER.headerControlPrefix .. "request-header-control-remove"
  local names = {}
  local seen = {}
  for _, n in ipairs(split(annotations[removeKey], ",")) do
    if n ~= "" then
      table.insert(names, n)
      seen[string.lower(n)] = true
    end
  end
  local added = false
  for _, n in ipairs(list(modifier.remove)) do
    checkName("requestHeaderModifier.remove header", n)
    if not seen[string.lower(n)] then
      table.insert(names, n)
      seen[string.lower(n)] = true
      added = true
    end
  end
  if added then
    write(removeKey, table.concat(names, ","))
  end
end

-- ---------------------------------------------------------------------------------------------
-- MSE service subset: the lane tag, i.e. the value requestHeaderModifier.set gives the lane header
-- (annotation kruise-lanes.io/lane-header of the stable Ingress, else the manager's default). No
-- tag is guessed: without that value the step is refused, as lanes-manager refuses the lane. A
-- run that routes nothing (Kruise creates the canary Ingress with weight 0 and nothing else)
-- leaves the stable Ingress's value.
-- ---------------------------------------------------------------------------------------------
local routes = #matches > 0 or (obj.weight ~= nil and obj.weight ~= "-1" and obj.weight ~= "0")
if PROVIDER.serviceSubset and annotations[SUBSET] ~= nil and routes then
  local laneHeader = annotations[LANE_HEADER]
  if laneHeader == nil or laneHeader == "" then
    laneHeader = DEFAULT_LANE_HEADER
  end
  local tag = nil
  if type(modifier) == "table" then
    for _, h in ipairs(list(modifier.set)) do
      if type(h.name) == "string" and string.lower(h.name) == string.lower(laneHeader) then
        tag = h.value
      end
    end
  end
  if tag == nil or tag == "" then
    fail(string.format("the stable Ingress asks for %s but requestHeaderModifier.set gives the lane header %q no value, "
      .. "so the lane tag is unknown: set header %q to the lane tag (or name the lane header with annotation %s on the stable Ingress)",
      SUBSET, laneHeader, laneHeader, LANE_HEADER))
  end
  -- The subset selects pods by a label with the tag as its value, as lanes-manager labels them.
  if string.len(tag) > 63 or not (string.match(tag, "^[A-Za-z0-9]$") or string.match(tag, "^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$")) then
    fail(string.format("lane tag %q (the value of %q) is not a valid label value, so no pod can carry it: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", tag, laneHeader))
  end
  if tag == "base" then
    fail(string.format("lane tag %q (the value of %q) is reserved for stable pods", tag, laneHeader))
  end
  write(SUBSET, tag)
end

annotations[NGINX .. "canary"] = "true"
if #ownedList > 0 then
  table.sort(ownedList)
  annotations[OWNED] = table.concat(ownedList, ",")
end
local kept = {}
for k, v in pairs(preserved) do
  if owned[k] then
    kept[k] = v
  end
end
if next(kept) ~= nil then
  annotations[PRESERVED] = json.encode(kept)
end
return annotations
