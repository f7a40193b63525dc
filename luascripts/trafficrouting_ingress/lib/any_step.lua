-- any_step.lua: one canary step with every rule the ingress providers express, and the sentence
-- for every rule they refuse. canary.lua embeds it and runs it (loadstring) for a step its fast
-- path declines, with the entry's globals: the canary Ingress's annotations `a` (the stable
-- Ingress's, restored), `keep`, the record of what the run writes, and on MSE the default lane
-- header DEFAULT_LANE_HEADER.

--#if mse
REFUSAL = "mse ingress provider: "
--#else
REFUSAL = "higress ingress provider: "
--#end
-- put writes a key the script owns; the first time in a run it records the key's value before
-- the run (already put back) in keep, the next kruise-lanes.io/owned.
local function put(k, v)
  if keep[k] == nil then
    keep[k] = a[k] or false
  end
  a[k] = v
end
-- fail refuses the step with a sentence that starts with the provider's name.
local function fail(f, ...)
  error(REFUSAL .. f:format(...), 0)
end

-- ---------------------------------------------------------------------------------------------
-- The bookkeeping of the scripts before kruise-lanes.io/owned, so that a release begun under an
-- older build goes on: they listed the keys they wrote in kruise-lanes.io/owned-keys (a comma
-- list) and the stable Ingress's values for some of them in kruise-lanes.io/preserved (a JSON
-- object, written only beside owned-keys): a listed key without a preserved value had none. Both
-- are put back here and dropped, so this run's kruise-lanes.io/owned replaces them.
-- ---------------------------------------------------------------------------------------------
if a["kruise-lanes.io/owned-keys"] then
  local preserved = json.decode(a["kruise-lanes.io/preserved"] ~= "" and a["kruise-lanes.io/preserved"] or "{}")
  if type(preserved) ~= "table" then
    fail("annotation kruise-lanes.io/preserved is not valid JSON; restore it from the stable Ingress or delete the canary Ingress")
  end
  for k in (a["kruise-lanes.io/owned-keys"] .. ","):gmatch("([^,]*),") do
    a[k] = nil
  end
  for k, v in pairs(preserved) do
    a[k] = v
  end
  a["kruise-lanes.io/owned-keys"], a["kruise-lanes.io/preserved"] = nil, nil
end

--#if mse
-- MSE: query canary, request header control and service subset under mse.ingress.kubernetes.io/.
local PREFIX = "mse.ingress.kubernetes.io/"
--#else
-- Higress: request header control and extra AND conditions under higress.io/.
local PREFIX = "higress.io/"
--#end
-- NONE stands for an absent list.
local NONE = {}

-- checkName refuses what is not an RFC 7230 token, the characters an HTTP header name may use;
-- checkValue refuses CR, LF and NUL, which could smuggle a second header line.
local function checkName(n, what)
  if not n:find("^[A-Za-z0-9!#$%%&'*+%-%.%^_`|~]+$") then
    fail("%s %q is not a valid HTTP header name (RFC 7230 token)", what, n)
  end
end
local function checkValue(v, what, n)
  if v:find("[\r\n%z]") then
    fail("%s %q has a value with CR, LF or NUL, which could smuggle a second header line", what, n)
  end
end

-- ---------------------------------------------------------------------------------------------
-- Matches: each match is an AND of conditions, several matches an OR; matches take precedence
-- over weight, which is used only without them. all[i] lists match i's conditions, headers first,
-- each as { kind, name, value, isRegex }; its field `cookie` is the canary-by-cookie pseudo-header
-- among them, a cookie named by the header's value.
-- ---------------------------------------------------------------------------------------------
local matches, all = obj.matches or NONE, {}
for i, m in ipairs(matches) do
  if m.path then
    fail("match %d has a path condition; an ingress canary keeps the stable Ingress's paths and cannot narrow them", i)
  end
  local list = {}
  for _, label in ipairs({ "header", "query parameter" }) do
    local kind = label:match("%a+")
    for _, c in ipairs(m[kind == "header" and "headers" or "queryParams"] or NONE) do
      local t = c.type or "Exact"
      if t ~= "Exact" and t ~= "RegularExpression" then
        fail("match %d %s %q has type %q; only Exact and RegularExpression are supported", i, label, c.name, t)
      end
      if kind == "query" and c.name == "" then
        fail("match %d has a query parameter without a name", i)
      end
      checkValue(c.value, "match " .. label, c.name)
      local cond = { kind, c.name, c.value, t ~= "Exact" }
      if kind == "header" and c.name == "canary-by-cookie" then
        if t ~= "Exact" then
          fail("match %d: the canary-by-cookie pseudo-header names a cookie and takes no regular expression", i)
        end
        cond = { "cookie", c.value, c.value }
        list.cookie = cond
      elseif kind == "header" then
        checkName(c.name, "match header")
      end
      list[#list + 1] = cond
    end
  end
  if not list[1] then
    fail("match %d has no condition", i)
  end
  all[i] = list
end

-- Several matches are expressible only as one condition each on the same header (or query
-- parameter, or cookie), which becomes one regular expression alternation (one cookie).
local list = all[1]
if all[2] then
  local first, alternatives = list[1], {}
  for i, l in ipairs(all) do
    local c = l[1]
    if l[2] or c[1] ~= first[1] or c[2] ~= first[2] then
      fail("matches 1 and %d cannot be ORed by this ingress: several matches are expressible only when each is one condition on the same header or query parameter", i)
    end
    alternatives[i] = c[4] and "(?:" .. c[3] .. ")" or c[3]:gsub("[%^%$%(%)%.%[%]%*%+%?%{%}%|\\]", "\\%0")
  end
  if not list.cookie then
    list = { { first[1], first[2], table.concat(alternatives, "|"), true } }
  end
end

-- One match: an AND of its conditions, where the data plane can express it.
if not list then
  if obj.weight ~= "-1" then
    put("nginx.ingress.kubernetes.io/canary-weight", obj.weight)
  end
elseif list.cookie then
  if list[2] then
    fail("a canary-by-cookie condition cannot be combined with other conditions in one match: the ingress ranks cookie below header and query, it does not AND them")
  end
  put("nginx.ingress.kubernetes.io/canary-by-cookie", list.cookie[3])
else
  --#if mse
  -- MSE routes by one header and one query parameter of its own, ANDed.
  local by = { header = {}, query = {} }
  for _, c in ipairs(list) do
    table.insert(by[c[1]], c)
  end
  if by.query[2] then
    fail("the mse ingress matches at most one query parameter per rule; got %d (%s, %s, ...)", #by.query, by.query[1][2], by.query[2][2])
  end
  if by.header[2] then
    fail("the mse ingress matches one header per rule; the condition on header %q cannot be ANDed with header %q", by.header[2][2], by.header[1][2])
  end
  for _, c in ipairs(list) do
    local key = c[1] == "header" and "nginx.ingress.kubernetes.io/canary-by-header" or PREFIX .. "canary-by-query"
    put(key, c[2])
    put(key .. (c[4] and "-pattern" or "-value"), c[3])
  end
  --#else
  -- Higress routes by the first header, and ANDs every further header and every query parameter
  -- with it, each as an annotation <exact|regex>-match-<header|query>-<name>.
  for i, c in ipairs(list) do
    if i == 1 then
      if c[1] ~= "header" then
        fail("the higress ingress routes a canary by header, cookie or weight; a query parameter condition (%q) needs a header condition in the same match", c[2])
      end
      put("nginx.ingress.kubernetes.io/canary-by-header", c[2])
      put("nginx.ingress.kubernetes.io/canary-by-header" .. (c[4] and "-pattern" or "-value"), c[3])
    else
      local name = (c[4] and "regex" or "exact") .. "-match-" .. c[1] .. "-" .. c[2]
      if #name > 63 or not name:find("^[A-Za-z0-9_.%-]*[A-Za-z0-9]$") then
        fail("the condition on %s %q needs annotation %q, which is not a valid annotation key", c[1], c[2], PREFIX .. name)
      end
      if a[PREFIX .. name] then
        fail("the condition on %s %q conflicts with annotation %s that the stable Ingress already carries", c[1], c[2], PREFIX .. name)
      end
      put(PREFIX .. name, c[3])
    end
  end
  --#end
end

-- ---------------------------------------------------------------------------------------------
-- Request header control: set/add as "Name Value" lines, remove as a comma list (a remove entry
-- is a plain string, so its `name` is nil), merged after any entries the stable Ingress already
-- carries: a header already there with another value is refused for set/add, kept for remove.
-- ---------------------------------------------------------------------------------------------
local modifier = obj.requestHeaderModifier or NONE
for _, op in ipairs(obj.requestHeaderModifier and { "set", "add", "remove" } or NONE) do
  local key, what, sep, entries, seen, added = PREFIX .. "request-header-control-" .. (op == "set" and "update" or op),
    "requestHeaderModifier." .. op .. " header", op == "remove" and "," or "\n", {}, {}, nil
  -- seen maps a header (lower case) to its entry; a blank line maps "", which no header is.
  for e in (a[key] or ""):gmatch("[^" .. sep .. "]+") do
    entries[#entries + 1] = e
    seen[(sep == "," and e or e:match("^%s*(%S*)")):lower()] = e
  end
  for _, h in ipairs(modifier[op] or NONE) do
    local n = h.name or h
    local e = h.name and n .. " " .. h.value or n
    checkName(n, what)
    if h.name then
      checkValue(h.value, what, n)
      if h.value == "" then
        fail("%s %q has an empty value", what, n)
      end
    end
    local before = seen[n:lower()]
    if not before then
      entries[#entries + 1] = e
      seen[n:lower()] = e
      added = 1
    elseif before ~= e and h.name then
      fail("%s %q conflicts with %q already in annotation %s", what, n, before, key)
    end
  end
  if added then
    -- The stable Ingress's own entries go into the merged value as they are, which is ours to
    -- write: refused if they hold what could smuggle a header line.
    if (a[key] or ""):find(sep == "," and "[\r\n%z]" or "[\r%z]") then
      fail("annotation %s of the stable Ingress holds CR, LF or NUL, which could smuggle a second header line into the merged value: remove it there", key)
    end
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
if a[PREFIX .. "service-subset"] and (list or obj.weight ~= "-1" and obj.weight ~= "0") then
  local lane, tag = a["kruise-lanes.io/lane-header"] or "", ""
  if lane == "" then
    lane = DEFAULT_LANE_HEADER
  end
  for _, h in ipairs(modifier.set or NONE) do
    if h.name:lower() == lane:lower() then
      tag = h.value
    end
  end
  if tag == "" then
    fail("the stable Ingress asks for %s but requestHeaderModifier.set gives the lane header %q no value, so the lane tag is unknown: set header %q to the lane tag (or name the lane header with annotation %s on the stable Ingress)", PREFIX .. "service-subset", lane, lane, "kruise-lanes.io/lane-header")
  end
  -- The subset selects pods by a label with the tag as its value, as lanes-manager labels them.
  if #tag > 63 or not tag:find("^[A-Za-z0-9]$") and not tag:find("^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$") then
    fail("lane tag %q (the value of %q) is not a valid label value, so no pod can carry it: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", tag, lane)
  end
  if tag == "base" then
    fail("lane tag %q (the value of %q) is reserved for stable pods", tag, lane)
  end
  put(PREFIX .. "service-subset", tag)
end
--#end
