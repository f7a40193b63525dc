-- Kruise Lanes HTTPRoute entry provider for Kruise Rollouts
-- (ConfigMap key lua.traffic.routing.HTTPRoute.gateway.networking.k8s.io, used for an HTTPRoute
-- named in trafficRouting[].customNetworkRefs).
--
-- Contract (Kruise v0.6.2's custom network provider): the global `obj` holds `data` (the route's
-- ORIGINAL spec, labels and annotations, as Kruise saved them before its first step),
-- `canaryWeight` and `stableWeight` (numbers; canaryWeight -1 means the step sets no weight),
-- `matches`, `canaryService`, `stableService` and `requestHeaderModifier`. The script returns
-- `{spec, labels, annotations}`, which replaces the route's. Every run starts from the original,
-- so nothing of an earlier step survives.
--
-- What it writes, for every rule of the original that has a backendRef to the stable Service:
--   * a step with matches: one more rule (after the original rules) whose matches are the rule's
--     own matches ANDed with each of the step's matches (an OR of them), sent to the canary
--     Service only, with the step's requestHeaderModifier as a RequestHeaderModifier filter;
--   * a step with a weight only: the stable backendRef is split into the stable part and a canary
--     backendRef right after it, which carries the step's requestHeaderModifier as a
--     backendRef-level filter, so the weighted lane traffic also carries the lane header.
-- Everything else of the route is returned as it was. A step with neither leaves the original.
-- An input an HTTPRoute cannot express is refused with error(...): Kruise reports the sentence in
-- the Rollout's status instead of writing a partial route.

local NAME = "httproute provider: "
local MAX_RULES = 16
local MAX_MATCHES_PER_RULE = 64
local MAX_MATCHES_PER_ROUTE = 128
local MAX_CONDITIONS = 16
local MAX_HEADER_EDITS = 16
local MAX_WEIGHT = 1000000

local function fail(fmt, ...)
  error(NAME .. string.format(fmt, ...), 0)
end

local function list(v)
  if type(v) ~= "table" then
    return {}
  end
  return v
end

local function copy(v)
  if type(v) ~= "table" then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    out[k] = copy(x)
  end
  return out
end

local function append(dst, src)
  for _, v in ipairs(src) do
    table.insert(dst, v)
  end
  return dst
end

-- RFC 7230 token: the characters a header (or query parameter) name may use.
local function isToken(s)
  return type(s) == "string" and s ~= "" and string.len(s) <= 256 and string.find(s, "^[A-Za-z0-9!#$%%&'*+%-%.%^_`|~]+$") ~= nil
end

local function checkName(what, name)
  if not isToken(name) then
    fail("%s %q is not a valid HTTP header name (RFC 7230 token of at most 256 characters)", what, tostring(name))
  end
end

local function checkValue(what, name, value)
  if type(value) ~= "string" or value == "" then
    fail("%s %q has no value; an HTTPRoute needs one", what, tostring(name))
  end
  if string.len(value) > 4096 then
    fail("%s %q has a value longer than 4096 characters", what, name)
  end
  if string.find(value, "\r", 1, true) or string.find(value, "\n", 1, true) or string.find(value, "\0", 1, true) then
    fail("%s %q has a value with CR, LF or NUL, which could smuggle a second header line", what, name)
  end
end

-- ---------------------------------------------------------------------------------------------
-- The step's input.
-- ---------------------------------------------------------------------------------------------
local data = obj.data
if type(data) ~= "table" or type(data.spec) ~= "table" then
  fail("Kruise passed no spec of the HTTPRoute (annotation rollouts.kruise.io/original-spec-configuration is empty)")
end
local spec = copy(data.spec)
local stable = obj.stableService
local canary = obj.canaryService
if type(stable) ~= "string" or stable == "" then
  fail("the Rollout names no stable Service (trafficRoutings[].service)")
end
if type(canary) ~= "string" or canary == "" then
  canary = stable
end
local weight = tonumber(obj.canaryWeight) or -1
if weight ~= -1 and (weight < 0 or weight > 100 or weight ~= math.floor(weight)) then
  fail("traffic %s%% is not a whole percentage between 0%% and 100%%", tostring(weight))
end

-- Kruise compares the returned spec with the stored route as JSON and writes it again while they
-- differ, so the result must already be in the form the API server stores: an empty list or object
-- (which would encode as null) is left out, and every field the Gateway API schema defaults is set.
local function prune(v)
  if type(v) ~= "table" then
    return v
  end
  for k, x in pairs(v) do
    v[k] = prune(x)
  end
  if next(v) == nil then
    return nil
  end
  return v
end

local function result(s)
  return { spec = prune(s), labels = data.labels, annotations = data.annotations }
end

-- The lane's header edits, checked once.
local modifier = nil
if type(obj.requestHeaderModifier) == "table" then
  local m = obj.requestHeaderModifier
  local set, add, remove = list(m.set), list(m.add), list(m.remove)
  for _, h in ipairs(set) do
    checkName("requestHeaderModifier.set header", h.name)
    checkValue("requestHeaderModifier.set header", h.name, h.value)
  end
  for _, h in ipairs(add) do
    checkName("requestHeaderModifier.add header", h.name)
    checkValue("requestHeaderModifier.add header", h.name, h.value)
  end
  for _, n in ipairs(remove) do
    checkName("requestHeaderModifier.remove header", n)
  end
  if #set > 0 or #add > 0 or #remove > 0 then
    modifier = { set = set, add = add, remove = remove }
  end
end

-- Step matches: each is an AND of conditions, several are an OR.
local function checkPath(i, p)
  local typ = p.type or "PathPrefix"
  local v = p.value or "/"
  if typ ~= "Exact" and typ ~= "PathPrefix" and typ ~= "RegularExpression" then
    fail("match %d path has type %q; use Exact, PathPrefix or RegularExpression", i, tostring(typ))
  end
  if type(v) ~= "string" or string.len(v) > 1024 or string.find(v, "[%c]") then
    fail("match %d path %q is not a valid path (at most 1024 characters, no control characters)", i, tostring(v))
  end
  if typ ~= "RegularExpression" then
    if string.sub(v, 1, 1) ~= "/" or string.find(v, "//", 1, true) or string.find(v, "/./", 1, true) or string.find(v, "/../", 1, true)
        or string.find(string.lower(v), "%2f", 1, true) or string.find(v, "#", 1, true)
        or string.sub(v, -3) == "/.." or string.sub(v, -2) == "/." or string.find(v, "^[-A-Za-z0-9/._~!$&'()*+,;=:@%%]+$") == nil then
      fail("match %d path %q is not an absolute, normalised path as an HTTPRoute requires", i, v)
    end
  end
  return { type = typ, value = v }
end

local function checkConditions(i, what, conds)
  local seen = {}
  for _, c in ipairs(conds) do
    local typ = c.type or "Exact"
    if typ ~= "Exact" and typ ~= "RegularExpression" then
      fail("match %d %s %q has type %q; use Exact or RegularExpression", i, what, tostring(c.name), tostring(typ))
    end
    checkName("match " .. what, c.name)
    checkValue("match " .. what, c.name, c.value)
    local key = c.name
    if what == "header" then
      key = string.lower(key)
    end
    if seen[key] then
      fail("match %d names %s %q twice; an HTTPRoute match takes each name once", i, what, c.name)
    end
    seen[key] = true
  end
  if #conds > MAX_CONDITIONS then
    fail("match %d has %d %s conditions; an HTTPRoute match takes at most %d", i, #conds, what, MAX_CONDITIONS)
  end
end

local stepMatches = {}
for i, m in ipairs(list(obj.matches)) do
  local headers, queries = list(m.headers), list(m.queryParams)
  checkConditions(i, "header", headers)
  checkConditions(i, "query parameter", queries)
  local path = nil
  if type(m.path) == "table" then
    path = checkPath(i, m.path)
  end
  if #headers == 0 and #queries == 0 and path == nil then
    fail("match %d has no condition; it would send every request to the canary", i)
  end
  table.insert(stepMatches, { headers = headers, queryParams = queries, path = path })
end

if #stepMatches == 0 and weight == -1 then
  return result(data.spec)
end

-- ---------------------------------------------------------------------------------------------
-- The route's rules and their backendRefs to the stable Service.
-- ---------------------------------------------------------------------------------------------
local function isServiceRef(ref, name)
  return type(ref) == "table" and ref.name == name and (ref.kind == nil or ref.kind == "Service") and (ref.group == nil or ref.group == "")
end

local rules = list(spec.rules)
local stableRules = {}
for i, rule in ipairs(rules) do
  local stableAt = nil
  for j, ref in ipairs(list(rule.backendRefs)) do
    if isServiceRef(ref, stable) then
      if stableAt ~= nil then
        fail("rule %d has two backendRefs to the stable Service %q; merge them into one", i, stable)
      end
      stableAt = j
    elseif canary ~= stable and isServiceRef(ref, canary) then
      fail("rule %d already routes to the canary Service %q, which Kruise creates and owns; remove that backendRef from the route", i, canary)
    end
  end
  if stableAt ~= nil then
    table.insert(stableRules, { index = i, rule = rule, stableAt = stableAt })
  end
end
if #stableRules == 0 then
  fail("no rule of the HTTPRoute has a backendRef to the stable Service %q, so no traffic can be shifted to the canary", stable)
end

-- Merges the lane's header edits into a filter list: into its RequestHeaderModifier if it has one
-- (an HTTPRoute allows one per list), as a new filter otherwise. A header the route already sets
-- to another value is refused rather than overwritten.
local function withLaneHeaders(where, filters, outer)
  local out = copy(list(filters))
  if modifier == nil then
    return out
  end
  local existing = nil
  for _, f in ipairs(out) do
    if f.type == "RequestHeaderModifier" then
      existing = f
    end
  end
  local function conflicts(kind, current, h)
    for _, c in ipairs(current) do
      if type(c.name) == "string" and string.lower(c.name) == string.lower(h.name) then
        if c.value ~= h.value then
          fail("%s already has a RequestHeaderModifier that %ss %q to %q; the step's requestHeaderModifier wants %q", where, kind, c.name, tostring(c.value), h.value)
        end
        return true
      end
    end
    return false
  end
  if outer ~= nil then
    for _, h in ipairs(modifier.set) do
      conflicts("set", outer, h)
    end
  end
  if existing == nil then
    existing = { type = "RequestHeaderModifier", requestHeaderModifier = {} }
    table.insert(out, existing)
  end
  local rhm = existing.requestHeaderModifier
  if type(rhm) ~= "table" then
    rhm = {}
    existing.requestHeaderModifier = rhm
  end
  for _, kind in ipairs({ "set", "add" }) do
    local current = list(rhm[kind])
    for _, h in ipairs(modifier[kind]) do
      if not conflicts(kind, current, h) then
        table.insert(current, { name = h.name, value = h.value })
      end
    end
    if #current > MAX_HEADER_EDITS then
      fail("%s would %s %d headers; an HTTPRoute filter takes at most %d", where, kind, #current, MAX_HEADER_EDITS)
    end
    if #current > 0 then
      rhm[kind] = current
    end
  end
  local removed = list(rhm.remove)
  local seen = {}
  for _, n in ipairs(removed) do
    seen[string.lower(n)] = true
  end
  for _, n in ipairs(modifier.remove) do
    if not seen[string.lower(n)] then
      table.insert(removed, n)
      seen[string.lower(n)] = true
    end
  end
  if #removed > MAX_HEADER_EDITS then
    fail("%s would remove %d headers; an HTTPRoute filter takes at most %d", where, #removed, MAX_HEADER_EDITS)
  end
  if #removed > 0 then
    rhm.remove = removed
  end
  if #out > MAX_CONDITIONS then
    fail("%s would have %d filters; an HTTPRoute takes at most %d", where, #out, MAX_CONDITIONS)
  end
  return out
end

-- The set-headers of a rule-level RequestHeaderModifier, to detect conflicts with backendRef ones.
local function ruleSets(rule)
  for _, f in ipairs(list(rule.filters)) do
    if f.type == "RequestHeaderModifier" and type(f.requestHeaderModifier) == "table" then
      return list(f.requestHeaderModifier.set)
    end
  end
  return {}
end

-- ---------------------------------------------------------------------------------------------
-- Weight only: split each stable backendRef.
-- ---------------------------------------------------------------------------------------------
if #stepMatches == 0 then
  for _, sr in ipairs(stableRules) do
    local refs = list(sr.rule.backendRefs)
    local out = {}
    local alone = #refs == 1
    for j, ref in ipairs(refs) do
      local share = tonumber(ref.weight) or 1
      if j == sr.stableAt then
        local stableRef = copy(ref)
        local canaryRef = copy(ref)
        local base = share
        if alone then
          base = 1
        end
        stableRef.weight = base * (100 - weight)
        canaryRef.name = canary
        canaryRef.weight = base * weight
        canaryRef.filters = withLaneHeaders(string.format("the stable backendRef of rule %d", sr.index), ref.filters, ruleSets(sr.rule))
        if #canaryRef.filters == 0 then
          canaryRef.filters = nil
        end
        if canaryRef.weight > MAX_WEIGHT or stableRef.weight > MAX_WEIGHT then
          fail("rule %d: the stable backendRef's weight %d times 100 exceeds the HTTPRoute maximum of %d; lower the weights of rule %d", sr.index, share, MAX_WEIGHT, sr.index)
        end
        table.insert(out, stableRef)
        table.insert(out, canaryRef)
      else
        -- Another backend keeps its share of the rule: its weight is scaled like the split one.
        local other = copy(ref)
        other.weight = share * 100
        if other.weight > MAX_WEIGHT then
          fail("rule %d: backendRef %q's weight %d times 100 exceeds the HTTPRoute maximum of %d; lower the weights of rule %d", sr.index, tostring(ref.name), share, MAX_WEIGHT, sr.index)
        end
        table.insert(out, other)
      end
    end
    if #out > MAX_CONDITIONS then
      fail("rule %d would have %d backendRefs; an HTTPRoute rule takes at most %d", sr.index, #out, MAX_CONDITIONS)
    end
    rules[sr.index].backendRefs = out
  end
  spec.rules = rules
  return result(spec)
end

-- ---------------------------------------------------------------------------------------------
-- Matches: a canary rule per stable rule, matching (its match AND a step match) for each pair.
-- ---------------------------------------------------------------------------------------------
local EMPTY = {}

-- covers(p, v): PathPrefix p matches every request that path v matches (element-wise prefix).
local function covers(p, v)
  local base = string.gsub(p, "/+$", "")
  return base == "" or v == base or string.sub(v, 1, string.len(base) + 1) == base .. "/"
end

-- The AND of two path conditions: a path, EMPTY when no request can match both, or a refusal.
local function pathAnd(ruleIndex, m, s)
  if s == nil then
    return m
  end
  if m == nil then
    return s
  end
  local mt, st = m.type or "PathPrefix", s.type
  local mv = m.value or "/"
  if mt == st and mv == s.value then
    return m
  end
  if mt == "PathPrefix" and st ~= "RegularExpression" and covers(mv, s.value) then
    return s
  end
  if st == "PathPrefix" and mt ~= "RegularExpression" and covers(s.value, mv) then
    return m
  end
  if mt == "RegularExpression" or st == "RegularExpression" then
    fail("rule %d matches path %q (%s) and the step matches path %q (%s); an HTTPRoute match cannot AND two different path conditions", ruleIndex, mv, mt, s.value, st)
  end
  return EMPTY
end

-- The AND of two lists of header (or query parameter) conditions.
local function conditionsAnd(ruleIndex, what, own, step)
  local out = copy(list(own))
  for _, c in ipairs(step) do
    local same = nil
    for _, o in ipairs(out) do
      if (what == "header" and string.lower(o.name) == string.lower(c.name)) or (what ~= "header" and o.name == c.name) then
        same = o
      end
    end
    local ctype = c.type or "Exact"
    if same == nil then
      table.insert(out, { name = c.name, type = ctype, value = c.value })
    elseif (same.type or "Exact") ~= ctype or same.value ~= c.value then
      if (same.type or "Exact") == "Exact" and ctype == "Exact" then
        return EMPTY
      end
      fail("rule %d already matches %s %q; an HTTPRoute match cannot AND a second, different condition on it", ruleIndex, what, c.name)
    end
  end
  if #out > MAX_CONDITIONS then
    fail("rule %d matched with the step would need %d %s conditions; an HTTPRoute match takes at most %d", ruleIndex, #out, what, MAX_CONDITIONS)
  end
  return out
end

local function usesPrefixRewrite(filters)
  for _, f in ipairs(list(filters)) do
    for _, k in ipairs({ "urlRewrite", "requestRedirect" }) do
      local x = f[k]
      if type(x) == "table" and type(x.path) == "table" and x.path.type == "ReplacePrefixMatch" then
        return true
      end
    end
  end
  return false
end

local totalMatches = 0
for _, rule in ipairs(rules) do
  local n = #list(rule.matches)
  if n == 0 then
    n = 1
  end
  totalMatches = totalMatches + n
end

local canaryRules = {}
for _, sr in ipairs(stableRules) do
  local rule = sr.rule
  local own = list(rule.matches)
  if #own == 0 then
    own = { {} }
  end
  local combined = {}
  for _, m in ipairs(own) do
    for _, s in ipairs(stepMatches) do
      local path = pathAnd(sr.index, m.path, s.path)
      local headers = EMPTY
      local queries = EMPTY
      if path ~= EMPTY then
        headers = conditionsAnd(sr.index, "header", m.headers, s.headers)
      end
      if headers ~= EMPTY then
        queries = conditionsAnd(sr.index, "query parameter", m.queryParams, s.queryParams)
      end
      if queries ~= EMPTY then
        local match = copy(m)
        match.path = copy(path) or { type = "PathPrefix", value = "/" }
        match.headers = nil
        match.queryParams = nil
        if #headers > 0 then
          match.headers = headers
        end
        if #queries > 0 then
          match.queryParams = queries
        end
        table.insert(combined, match)
      end
    end
  end
  if #combined > 0 then
    if #combined > MAX_MATCHES_PER_RULE then
      fail("rule %d has %d matches and the step %d, which makes %d canary matches; an HTTPRoute rule takes at most %d", sr.index, #own, #stepMatches, #combined, MAX_MATCHES_PER_RULE)
    end
    local canaryRule = copy(rule)
    canaryRule.name = nil
    canaryRule.matches = combined
    local ref = copy(list(rule.backendRefs)[sr.stableAt])
    ref.name = canary
    ref.weight = 1
    canaryRule.backendRefs = { ref }
    canaryRule.filters = withLaneHeaders(string.format("rule %d", sr.index), rule.filters, nil)
    if #canaryRule.filters == 0 then
      canaryRule.filters = nil
    end
    if (usesPrefixRewrite(canaryRule.filters) or usesPrefixRewrite(ref.filters)) and
        (#combined ~= 1 or type(combined[1].path) ~= "table" or (combined[1].path.type or "PathPrefix") ~= "PathPrefix") then
      fail("rule %d rewrites a path prefix (ReplacePrefixMatch), which an HTTPRoute allows only with exactly one PathPrefix match; the step would give its canary rule %d matches", sr.index, #combined)
    end
    totalMatches = totalMatches + #combined
    table.insert(canaryRules, canaryRule)
  end
end
if #canaryRules == 0 then
  fail("the step's matches select no request that the HTTPRoute sends to the stable Service %q (their paths or headers exclude each other)", stable)
end
if #rules + #canaryRules > MAX_RULES then
  fail("the HTTPRoute has %d rules and the step adds %d canary rules; an HTTPRoute takes at most %d", #rules, #canaryRules, MAX_RULES)
end
if totalMatches > MAX_MATCHES_PER_ROUTE - 1 then
  fail("the HTTPRoute would have %d matches across its rules with the canary rules; it takes fewer than %d", totalMatches, MAX_MATCHES_PER_ROUTE)
end
spec.rules = append(rules, canaryRules)
return result(spec)
