-- Source of the Kruise Lanes ingress providers (mse.lua, higress.lua). Kruise Rollouts runs a
-- provider for each canary step and follows its ingress Lua contract: the global `obj` holds
-- `annotations` (those of the <ingress>-canary Ingress), `weight` (a string, "-1" means no
-- weight), `matches`, `canaryService` and `requestHeaderModifier`, converted from Kruise's typed
-- step (so every name and value is a string); the script returns the complete annotation map of
-- the canary Ingress.
--
-- Kruise parses and compiles the script text on every call, so what a provider does not run must
-- not be in its file: `make generate` keeps the `--#if <provider>` ... `--#else` ... `--#end`
-- blocks of each provider only in that provider's file, and drops the comments and spare
-- whitespace (luascripts/minify_test.go). Fewer tokens are a cheaper call.
--
-- Rules the data plane cannot express raise error(...): Kruise then reports the sentence in the
-- Rollout's or TrafficRouting's status message instead of programming a partial rule.

local NGINX = "nginx.ingress.kubernetes.io/"
local OWNED = "kruise-lanes.io/owned-keys"
local KEPT = "kruise-lanes.io/preserved"
local LANE = "kruise-lanes.io/lane-header"
-- The manager's --lane-header. The installer rewrites this one line (luascripts.WithDefaultLaneHeader)
-- so the script and the manager use the same default; keep it on a line of its own.
local DEFAULT_LANE_HEADER = "x-mse-tag"
-- NONE is an empty list for absent fields; EXACT the match type taken when a match names none.
local NONE = {}
local EXACT = "Exact"
--#if mse
-- MSE: query canary, request header control and service subset under mse.ingress.kubernetes.io/.
local PREFIX = "mse.ingress.kubernetes.io/"
local function fail(f, ...)
  error("mse ingress provider: " .. string.format(f, ...), 0)
end
--#else
-- Higress: request header control and extra AND conditions under higress.io/.
local PREFIX = "higress.io/"
local function fail(f, ...)
  error("higress ingress provider: " .. string.format(f, ...), 0)
end
--#end

-- name refuses what is not an RFC 7230 token, the characters an HTTP header name may use.
local function name(n, what)
  if not n:find("^[A-Za-z0-9!#$%%&'*+%-%.%^_`|~]+$") then
    fail("%s %q is not a valid HTTP header name (RFC 7230 token)", what, n)
  end
end

-- value refuses CR, LF and NUL, which could smuggle a second header line.
local function value(v, what, n)
  if v:find("[\r\n%z]") then
    fail("%s %q has a value with CR, LF or NUL, which could smuggle a second header line", what, n)
  end
end

-- ---------------------------------------------------------------------------------------------
-- Bookkeeping: keys this script wrote on an earlier run are listed in OWNED and removed; values
-- the stable Ingress itself carried for a key we also write are kept in KEPT (JSON) and restored,
-- so a user's own annotation is merged with, never replaced by, the lane's. Canary keys only a
-- canary Ingress carries are removed too (also the query keys Kruise's own mse.lua writes), so
-- nothing of an earlier step, or of an earlier script, survives.
-- ---------------------------------------------------------------------------------------------
local a = obj.annotations or {}
for k in (a[OWNED] or ""):gmatch("[^,]+") do
  a[k] = nil
end
local kept = {}
if (a[KEPT] or "") ~= "" then
  kept = json.decode(a[KEPT])
  if type(kept) ~= "table" then
    fail("annotation %s is not valid JSON; restore it from the stable Ingress or delete the canary Ingress", KEPT)
  end
end
a[OWNED], a[KEPT] = nil
for k, v in pairs(kept) do
  a[k] = v
end
for _, k in ipairs({ "by-cookie", "by-header", "by-header-pattern", "by-header-value", "weight", "by-query", "by-query-pattern", "by-query-value" }) do
  a[NGINX .. "canary-" .. k] = nil
end
for _, k in ipairs({ "", "-pattern", "-value" }) do
  a["mse.ingress.kubernetes.io/canary-by-query" .. k] = nil
end

-- put writes a key the script owns; the value the stable Ingress had for it is kept first.
local owned, ownedList = {}, {}
local function put(k, v)
  if not owned[k] then
    kept[k] = kept[k] or a[k]
    owned[k] = true
    ownedList[#ownedList + 1] = k
  end
  a[k] = v
end

-- ---------------------------------------------------------------------------------------------
-- Matches: each match is an AND of conditions, several matches an OR. A condition is
-- { kind, name, value, type }; a canary-by-cookie pseudo-header is a cookie named by its value.
-- ---------------------------------------------------------------------------------------------
local function conditions(i, m)
  if m.path then
    fail("match %d has a path condition; an ingress canary keeps the stable Ingress's paths and cannot narrow them", i)
  end
  local list = {}
  for _, kind in ipairs({ "header", "query parameter" }) do
    for _, c in ipairs(m[kind == "header" and "headers" or "queryParams"] or NONE) do
      local t = c.type or EXACT
      if t ~= EXACT and t ~= "RegularExpression" then
        fail("match %d %s %q has type %q; only Exact and RegularExpression are supported", i, kind, c.name, t)
      end
      if kind ~= "header" then
        if c.name == "" then
          fail("match %d has a query parameter without a name", i)
        end
        value(c.value, "match query parameter", c.name)
        list[#list + 1] = { "query", c.name, c.value, t }
      else
        value(c.value, "match header", c.name)
        if c.name == "canary-by-cookie" then
          if t ~= EXACT then
            fail("match %d: the canary-by-cookie pseudo-header names a cookie and takes no regular expression", i)
          end
          list[#list + 1] = { "cookie", c.value, c.value }
        else
          name(c.name, "match header")
          list[#list + 1] = { "header", c.name, c.value, t }
        end
      end
    end
  end
  if not list[1] then
    fail("match %d has no condition", i)
  end
  return list
end

-- nameAndValue writes key (the condition's name) and key-value or key-pattern (its value).
local function nameAndValue(key, c)
  put(key, c[2])
  put(key .. (c[4] == EXACT and "-value" or "-pattern"), c[3])
end

-- apply writes one match, an AND of its conditions, where the data plane can express it.
local function apply(list)
  local by = { header = {}, query = {}, cookie = {} }
  for _, c in ipairs(list) do
    table.insert(by[c[1]], c)
  end
  local headers, queries, cookie = by.header, by.query, by.cookie[1]
  if cookie then
    if list[2] then
      fail("a canary-by-cookie condition cannot be combined with other conditions in one match: the ingress ranks cookie below header and query, it does not AND them")
    end
    return put(NGINX .. "canary-by-cookie", cookie[3])
  end
  if headers[1] then
    nameAndValue(NGINX .. "canary-by-header", headers[1])
  end
  --#if mse
  -- MSE matches one query parameter of its own, and no second header.
  if queries[2] then
    fail("the mse ingress matches at most one query parameter per rule; got %d (%s, %s, ...)", #queries, queries[1][2], queries[2][2])
  end
  if queries[1] then
    nameAndValue(PREFIX .. "canary-by-query", queries[1])
  end
  if headers[2] then
    fail("the mse ingress matches one header per rule; the condition on header %q cannot be ANDed with header %q", headers[2][2], headers[1][2])
  end
  --#else
  -- Higress ANDs every further header and every query parameter with the first header, each as
  -- an annotation <exact|regex>-match-<header|query>-<name>.
  for _, c in ipairs(queries) do
    headers[#headers + 1] = c
  end
  for i, c in ipairs(headers) do
    if i == 1 and c[1] ~= "header" then
      fail("the higress ingress routes a canary by header, cookie or weight; a query parameter condition (%q) needs a header condition in the same match", c[2])
    end
    local key = (c[4] == EXACT and "exact" or "regex") .. "-match-" .. c[1] .. "-" .. c[2]
    if i > 1 then
      if #key > 63 or not key:find("^[A-Za-z0-9_.%-]*[A-Za-z0-9]$") then
        fail("the condition on %s %q needs annotation %q, which is not a valid annotation key", c[1], c[2], PREFIX .. key)
      end
      if a[PREFIX .. key] then
        fail("the condition on %s %q conflicts with annotation %s that the stable Ingress already carries", c[1], c[2], PREFIX .. key)
      end
      put(PREFIX .. key, c[3])
    end
  end
  --#end
end

-- Several matches are expressible only as one condition each on the same header (or query
-- parameter, or cookie), which becomes a single regular expression alternation.
local function alternation(all)
  local first, alternatives = all[1][1], {}
  for i, list in ipairs(all) do
    local c = list[1]
    if list[2] or c[1] ~= first[1] or c[2] ~= first[2] then
      fail("matches 1 and %d cannot be ORed by this ingress: several matches are expressible only when each is one condition on the same header or query parameter", i)
    end
    alternatives[i] = c[4] == EXACT and c[3]:gsub("[%^%$%(%)%.%[%]%*%+%?%{%}%|\\]", "\\%0") or "(?:" .. c[3] .. ")"
  end
  if first[1] == "cookie" then
    return { first }
  end
  return { { first[1], first[2], table.concat(alternatives, "|") } }
end

-- Kruise's contract: matches take precedence over weight, so weight is used only without them.
local matches = obj.matches or NONE
if matches[1] then
  local all = {}
  for i, m in ipairs(matches) do
    all[i] = conditions(i, m)
  end
  apply(all[2] and alternation(all) or all[1])
elseif obj.weight ~= "-1" then
  put(NGINX .. "canary-weight", obj.weight)
end

-- ---------------------------------------------------------------------------------------------
-- Request header control: set/add as "Name Value" lines, remove as a comma list, merged after any
-- entries the stable Ingress already carries (a header already there with another value is
-- refused for set/add, left as it is for remove).
-- ---------------------------------------------------------------------------------------------
local modifier = obj.requestHeaderModifier or NONE
for _, op in ipairs({ "set", "add", "remove" }) do
  local key = PREFIX .. "request-header-control-" .. (op == "set" and "update" or op)
  local what = "requestHeaderModifier." .. op .. " header"
  local sep = op == "remove" and "," or "\n"
  local entries, seen, added = {}, {}, false
  for e in (a[key] or ""):gmatch("[^" .. sep .. "]+") do
    entries[#entries + 1] = e
    local n = sep == "," and e or e:match("^%s*(%S+)")
    if n then
      seen[n:lower()] = e
    end
  end
  for _, h in ipairs(modifier[op] or NONE) do
    local n, e = h, h
    if sep ~= "," then
      n = h.name
      name(n, what)
      value(h.value, what, n)
      if h.value == "" then
        fail("%s %q has an empty value", what, n)
      end
      e = n .. " " .. h.value
    else
      name(n, what)
    end
    local before = seen[n:lower()]
    if not before then
      entries[#entries + 1] = e
      seen[n:lower()] = e
      added = true
    elseif before ~= e and sep ~= "," then
      fail("%s %q conflicts with %q already in annotation %s", what, n, before, key)
    end
  end
  if added then
    put(key, table.concat(entries, sep))
  end
end

--#if mse
-- ---------------------------------------------------------------------------------------------
-- MSE service subset: the lane tag, i.e. the value requestHeaderModifier.set gives the lane header
-- (annotation kruise-lanes.io/lane-header of the stable Ingress, else the manager's default). No
-- tag is guessed: without that value the step is refused, as lanes-manager refuses the lane. A
-- run that routes nothing (Kruise creates the canary Ingress with weight 0 and nothing else)
-- leaves the stable Ingress's value.
-- ---------------------------------------------------------------------------------------------
local SUBSET = PREFIX .. "service-subset"
if a[SUBSET] and (matches[1] or obj.weight ~= "-1" and obj.weight ~= "0") then
  local lane = a[LANE] or ""
  if lane == "" then
    lane = DEFAULT_LANE_HEADER
  end
  local tag = ""
  for _, h in ipairs(modifier.set or NONE) do
    if h.name:lower() == lane:lower() then
      tag = h.value
    end
  end
  if tag == "" then
    fail("the stable Ingress asks for %s but requestHeaderModifier.set gives the lane header %q no value, so the lane tag is unknown: set header %q to the lane tag (or name the lane header with annotation %s on the stable Ingress)", SUBSET, lane, lane, LANE)
  end
  -- The subset selects pods by a label with the tag as its value, as lanes-manager labels them.
  if #tag > 63 or not tag:find("^[A-Za-z0-9]$") and not tag:find("^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$") then
    fail("lane tag %q (the value of %q) is not a valid label value, so no pod can carry it: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", tag, lane)
  end
  if tag == "base" then
    fail("lane tag %q (the value of %q) is reserved for stable pods", tag, lane)
  end
  put(SUBSET, tag)
end
--#end

a[NGINX .. "canary"] = "true"
if ownedList[1] then
  table.sort(ownedList)
  a[OWNED] = table.concat(ownedList, ",")
end
local keep = {}
for k, v in pairs(kept) do
  if owned[k] then
    keep[k] = v
  end
end
if next(keep) then
  a[KEPT] = json.encode(keep)
end
return a
