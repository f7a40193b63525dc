-- Source of the Kruise Lanes ingress providers (mse.lua, higress.lua). Kruise Rollouts runs a
-- provider for each canary step and follows its ingress Lua contract: the global `obj` holds
-- `annotations` (those of the <ingress>-canary Ingress), `weight` (a string, "-1" means no
-- weight), `matches`, `canaryService` and `requestHeaderModifier`, converted from Kruise's typed
-- step (so every name and value is a string, and absent lists are nil); the script returns the
-- complete annotation map of the canary Ingress.
--
-- Kruise parses and compiles the whole script text on every call, so the cost of a call follows
-- the number of tokens it parses (and, far less, the length of its strings). `make generate`
-- (luascripts/generate_test.go) builds each provider from four files:
--   - this one, the entry: the bookkeeping every step needs, a weight-only step, and the result;
--   - simple_step.lua, the steps lanes run most (at most one match of one exact header, at most
--     one header set, the lane tag), which writes nothing and returns nil on anything else;
--   - any_step.lua, every rule the providers express, with the sentence for every rule they
--     refuse;
--   - old_bookkeeping.lua, which reads the bookkeeping of the scripts before this format.
-- The last three are embedded here as string constants (the `--#embed` lines), so a call scans
-- them as strings, about a tenth of the cost of parsing them as code, and compiles only what the
-- step needs (loadstring). `--#if <provider>` ... `--#else` ... `--#end` blocks are kept only in
-- that provider's file; comments and spare whitespace are dropped (luascripts/minify_test.go).
-- The code prefers one generic loop to several specialised functions, and writes annotation keys
-- out in full rather than through constants.
--
-- The chunks share the entry's state as globals (DEFAULT_LANE_HEADER, REFUSAL, a, kept, keep):
-- Kruise runs every call in a fresh Lua state, so nothing outlives the call, and globals spare
-- each chunk the tokens of taking and naming its arguments.
--
-- Rules the data plane cannot express raise error(...): Kruise then reports the sentence in the
-- Rollout's or TrafficRouting's status message instead of programming a partial rule.

-- The manager's --lane-header. The installer rewrites this one line (luascripts.WithDefaultLaneHeader)
-- so the script and the manager use the same default; keep it on a line of its own.
DEFAULT_LANE_HEADER = "x-mse-tag"
-- Every refusal starts with the provider's name.
--#if mse
REFUSAL = "mse ingress provider: "
--#else
REFUSAL = "higress ingress provider: "
--#end

-- ---------------------------------------------------------------------------------------------
-- Bookkeeping, in one annotation: kruise-lanes.io/owned maps each key this script wrote on an
-- earlier run to the value the stable Ingress had for it, or false if it had none. Each run first
-- puts those values back (false removes the key), so nothing of an earlier step survives and a
-- user's own annotation is merged with, never replaced by, the lane's. A canary Ingress without
-- it (just created from the stable Ingress, or written by Kruise's own script) gets the map
-- below instead: the canary keys only a canary Ingress carries, removed (also the query keys
-- Kruise's mse.lua writes). One JSON decode does all of it, and costs far less than the code
-- that would do it key by key (the cost of a call follows the tokens it parses).
-- ---------------------------------------------------------------------------------------------
a, keep = obj.annotations or {}, {}
kept = json.decode(a["kruise-lanes.io/owned"] or '{"nginx.ingress.kubernetes.io/canary-by-cookie":false,"nginx.ingress.kubernetes.io/canary-by-header":false,"nginx.ingress.kubernetes.io/canary-by-header-pattern":false,"nginx.ingress.kubernetes.io/canary-by-header-value":false,"nginx.ingress.kubernetes.io/canary-weight":false,"nginx.ingress.kubernetes.io/canary-by-query":false,"nginx.ingress.kubernetes.io/canary-by-query-pattern":false,"nginx.ingress.kubernetes.io/canary-by-query-value":false,"mse.ingress.kubernetes.io/canary-by-query":false,"mse.ingress.kubernetes.io/canary-by-query-pattern":false,"mse.ingress.kubernetes.io/canary-by-query-value":false}')
if type(kept) ~= "table" then
  error(REFUSAL .. "annotation kruise-lanes.io/owned is not valid JSON; restore it from the stable Ingress or delete the canary Ingress", 0)
end
-- Scripts before this format kept the keys they wrote in a comma list, kruise-lanes.io/owned-keys,
-- and the stable Ingress's values in kruise-lanes.io/preserved: old_bookkeeping.lua adds both to
-- kept and removes them, so a release that began under an older build goes on.
--#embed OLD_BOOKKEEPING old_bookkeeping.lua
if a["kruise-lanes.io/owned-keys"] or a["kruise-lanes.io/preserved"] then
  loadstring(OLD_BOOKKEEPING)()
end
for k, v in pairs(kept) do
  a[k] = v or nil
end

-- ---------------------------------------------------------------------------------------------
-- The step: a weight alone is written here; anything else goes to simple_step.lua, which
-- returns what it would write, and to any_step.lua when simple_step.lua declines it, by
-- returning nil or raising an error, which pcall turns into the same.
-- ---------------------------------------------------------------------------------------------
--#embed SIMPLE_STEP simple_step.lua
--#embed ANY_STEP any_step.lua
local w = {}
--#if mse
if obj.matches or obj.requestHeaderModifier or a["mse.ingress.kubernetes.io/service-subset"] then
--#else
if obj.matches or obj.requestHeaderModifier then
--#end
  -- simple is the table of what the simple step writes; nil when it declined; on an error
  -- (pcall's first value false), the error's message.
  local _, simple = pcall(loadstring(SIMPLE_STEP))
  if type(simple) == "table" then
    w = simple
  else
    loadstring(ANY_STEP)()
  end
elseif obj.weight ~= "-1" then
  w["nginx.ingress.kubernetes.io/canary-weight"] = obj.weight
end
-- What the weight-only or the simple step writes, each key once, is applied in this one loop (a
-- function would cost a compile of its own): keep records each key's value before the run
-- (already put back above), the next kruise-lanes.io/owned.
for k, v in pairs(w) do
  keep[k] = a[k] or false
  a[k] = v
end

a["nginx.ingress.kubernetes.io/canary"] = "true"
a["kruise-lanes.io/owned"] = next(keep) and json.encode(keep) or nil
return a
