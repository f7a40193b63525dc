-- Source of the Kruise Lanes ingress providers (mse.lua, higress.lua). Kruise Rollouts runs a
-- provider for each canary step and follows its ingress Lua contract: the global `obj` holds
-- `annotations` (those of the <ingress>-canary Ingress), `weight` (a string, "-1" means no
-- weight), `matches`, `canaryService` and `requestHeaderModifier`, converted from Kruise's typed
-- step (so every name and value is a string, and absent lists are nil); the script returns the
-- complete annotation map of the canary Ingress.
--
-- Kruise parses and compiles the whole script text on every call, so the cost of a call follows
-- the number of tokens it parses (and, far less, the length of its strings). `make generate`
-- (luascripts/generate_test.go) builds each provider from three files:
--   - this one, the entry: the bookkeeping every step needs, a weight-only step, and the result;
--   - simple_step.lua, the steps lanes run most (at most one match of one exact header, at most
--     one header set, the lane tag), which writes nothing and returns nil on anything else;
--   - any_step.lua, every rule the providers express, with the sentence for every rule they
--     refuse.
-- The two step files are embedded here as string constants (the `--#embed` lines), so a call
-- scans them as two strings, about a tenth of the cost of parsing them as code, and compiles
-- only the one the step needs (loadstring). `--#if <provider>` ... `--#else` ... `--#end`
-- blocks are kept only in that provider's file; comments and spare whitespace are dropped
-- (luascripts/minify_test.go). The code prefers one generic loop to several specialised
-- functions, and writes annotation keys out in full rather than through constants.
--
-- Rules the data plane cannot express raise error(...): Kruise then reports the sentence in the
-- Rollout's or TrafficRouting's status message instead of programming a partial rule.

-- The manager's --lane-header. The installer rewrites this one line (luascripts.WithDefaultLaneHeader)
-- so the script and the manager use the same default; keep it on a line of its own.
local DEFAULT_LANE_HEADER = "x-mse-tag"
-- Every refusal starts with the provider's name.
--#if mse
local REFUSAL = "mse ingress provider: "
--#else
local REFUSAL = "higress ingress provider: "
--#end

-- ---------------------------------------------------------------------------------------------
-- Bookkeeping: keys this script wrote on an earlier run are listed in annotation
-- kruise-lanes.io/owned-keys and removed; values the stable Ingress itself carried for a key we
-- also write are kept in kruise-lanes.io/preserved (JSON) and restored, so a user's own
-- annotation is merged with, never replaced by, the lane's. Then the canary keys only a canary
-- Ingress carries are removed (also the query keys Kruise's own mse.lua writes), so nothing of an
-- earlier step, or of an earlier script, survives.
-- ---------------------------------------------------------------------------------------------
local a, owned, keep = obj.annotations or {}, {}, {}
local kept = json.decode(a["kruise-lanes.io/preserved"] ~= "" and a["kruise-lanes.io/preserved"] or "{}")
if type(kept) ~= "table" then
  error(REFUSAL .. "annotation kruise-lanes.io/preserved is not valid JSON; restore it from the stable Ingress or delete the canary Ingress", 0)
end
-- The comma list is split with plain finds: Lua patterns (gmatch) cost an allocation per
-- character in Kruise's Lua runtime.
local list, i = (a["kruise-lanes.io/owned-keys"] or "") .. ",kruise-lanes.io/owned-keys,kruise-lanes.io/preserved,", 1
while i <= #list do
  local comma = list:find(",", i, true)
  a[list:sub(i, comma - 1)], i = nil, comma + 1
end
for k, v in pairs(kept) do
  a[k] = v
end
for _, k in ipairs({ "nginx.ingress.kubernetes.io/canary-by-cookie", "nginx.ingress.kubernetes.io/canary-by-header",
  "nginx.ingress.kubernetes.io/canary-by-header-pattern", "nginx.ingress.kubernetes.io/canary-by-header-value",
  "nginx.ingress.kubernetes.io/canary-weight", "nginx.ingress.kubernetes.io/canary-by-query",
  "nginx.ingress.kubernetes.io/canary-by-query-pattern", "nginx.ingress.kubernetes.io/canary-by-query-value",
  "mse.ingress.kubernetes.io/canary-by-query", "mse.ingress.kubernetes.io/canary-by-query-pattern",
  "mse.ingress.kubernetes.io/canary-by-query-value" }) do
  a[k] = nil
end

-- put writes a key the script owns; the value the stable Ingress had for it is kept first.
-- owned lists the keys (its array part) and marks them (its string keys).
local function put(k, v)
  if not owned[k] then
    owned[k], owned[#owned + 1], keep[k] = 1, k, kept[k] or a[k]
  end
  a[k] = v
end

-- ---------------------------------------------------------------------------------------------
-- The step: a weight alone is written here; anything else goes to simple_step.lua, and to
-- any_step.lua when simple_step.lua declines it (it has then written nothing). Both receive the
-- same arguments.
-- ---------------------------------------------------------------------------------------------
--#embed SIMPLE_STEP simple_step.lua
--#embed ANY_STEP any_step.lua
--#if mse
if obj.matches or obj.requestHeaderModifier or a["mse.ingress.kubernetes.io/service-subset"] then
--#else
if obj.matches or obj.requestHeaderModifier then
--#end
  if not loadstring(SIMPLE_STEP)(a, put, DEFAULT_LANE_HEADER, REFUSAL) then
    loadstring(ANY_STEP)(a, put, DEFAULT_LANE_HEADER, REFUSAL)
  end
elseif obj.weight ~= "-1" then
  put("nginx.ingress.kubernetes.io/canary-weight", obj.weight)
end

a["nginx.ingress.kubernetes.io/canary"] = "true"
if owned[1] then
  table.sort(owned)
  a["kruise-lanes.io/owned-keys"] = table.concat(owned, ",")
end
if next(keep) then
  a["kruise-lanes.io/preserved"] = json.encode(keep)
end
return a
