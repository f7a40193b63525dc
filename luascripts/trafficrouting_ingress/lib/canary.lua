-- Source of the Kruise Lanes ingress providers (mse.lua, higress.lua). Kruise Rollouts runs a
-- provider for each canary step and follows its ingress Lua contract: the global `obj` holds
-- `annotations` (those of the <ingress>-canary Ingress), `weight` (a string, "-1" means no
-- weight), `matches`, `canaryService` and `requestHeaderModifier`, converted from Kruise's typed
-- step (so every name and value is a string, and absent lists are nil); the script returns the
-- complete annotation map of the canary Ingress.
--
-- Kruise parses and compiles the whole script text on every call, so the cost of a call follows
-- the number of tokens it parses (and, far less, the length of its strings). `make generate`
-- (luascripts/generate_test.go) builds each provider from two files:
--   - this one, the entry: the bookkeeping every step needs, the steps lanes run most (at most
--     one match of one exact header, at most one header set, the lane tag; or a weight alone),
--     and the result;
--   - any_step.lua, every rule the providers express, with the sentence for every rule they
--     refuse, for every step the entry declines (and the bookkeeping of the scripts before this
--     format).
-- The second is embedded here as a string constant (the `--#embed` line), so a call scans it as
-- a string, a small part of the cost of parsing it as code, and compiles it (loadstring) only
-- when the step needs it. `--#if <provider>` ... `--#else` ... `--#end` blocks are kept only in
-- that provider's file; comments and spare whitespace are dropped (luascripts/minify_test.go).
-- The code prefers one generic loop to several specialised functions, defines no function (each
-- costs a compile of its own), and writes annotation keys out in full rather than through
-- constants.
--
-- any_step.lua shares the entry's state as globals (DEFAULT_LANE_HEADER on MSE, a, keep):
-- Kruise runs every call in a fresh Lua state, so nothing outlives the call, and globals spare
-- each chunk the tokens of taking and naming its arguments.
--
-- Rules the data plane cannot express raise error(...): Kruise then reports the sentence in the
-- Rollout's or TrafficRouting's status message instead of programming a partial rule. Every
-- sentence starts with the provider's name ("mse ingress provider: ", "higress ingress
-- provider: "; any_step.lua's REFUSAL).

--#if mse
-- The manager's --lane-header. The installer rewrites this one line (luascripts.WithDefaultLaneHeader)
-- so the script and the manager use the same default; keep it on a line of its own. Only MSE
-- reads it (for the lane tag), so the Higress provider carries none.
DEFAULT_LANE_HEADER = "x-mse-tag"
--#end

-- ---------------------------------------------------------------------------------------------
-- Bookkeeping, in one annotation: kruise-lanes.io/owned maps each key this script wrote on an
-- earlier run to the value the stable Ingress had for it, or false if it had none. Each run first
-- puts those values back (false removes the key), so nothing of an earlier step survives and a
-- user's own annotation is merged with, never replaced by, the lane's. A canary Ingress without
-- it (just created from the stable Ingress, or written by Kruise's own script) gets the map
-- below instead: the canary keys Kruise's own script for the class writes, removed (on MSE also
-- the query keys; Kruise's higress.lua writes none). One JSON decode does all of it, and costs
-- far less than the code that would do it key by key (the cost of a call follows the tokens it
-- parses). A canary Ingress written by the scripts before this format (kruise-lanes.io/owned-keys)
-- goes to any_step.lua, which reads that bookkeeping too.
-- ---------------------------------------------------------------------------------------------
a, keep = obj.annotations or {}, {}
--#if mse
local kept = json.decode(a["kruise-lanes.io/owned"] or '{"nginx.ingress.kubernetes.io/canary-by-cookie":false,"nginx.ingress.kubernetes.io/canary-by-header":false,"nginx.ingress.kubernetes.io/canary-by-header-pattern":false,"nginx.ingress.kubernetes.io/canary-by-header-value":false,"nginx.ingress.kubernetes.io/canary-weight":false,"nginx.ingress.kubernetes.io/canary-by-query":false,"nginx.ingress.kubernetes.io/canary-by-query-pattern":false,"nginx.ingress.kubernetes.io/canary-by-query-value":false,"mse.ingress.kubernetes.io/canary-by-query":false,"mse.ingress.kubernetes.io/canary-by-query-pattern":false,"mse.ingress.kubernetes.io/canary-by-query-value":false}')
--#else
local kept = json.decode(a["kruise-lanes.io/owned"] or '{"nginx.ingress.kubernetes.io/canary-by-cookie":false,"nginx.ingress.kubernetes.io/canary-by-header":false,"nginx.ingress.kubernetes.io/canary-by-header-pattern":false,"nginx.ingress.kubernetes.io/canary-by-header-value":false,"nginx.ingress.kubernetes.io/canary-weight":false}')
--#end
if type(kept) ~= "table" then
--#if mse
  error("mse ingress provider: annotation kruise-lanes.io/owned is not valid JSON; restore it from the stable Ingress or delete the canary Ingress", 0)
--#else
  error("higress ingress provider: annotation kruise-lanes.io/owned is not valid JSON; restore it from the stable Ingress or delete the canary Ingress", 0)
--#end
end
for k, v in pairs(kept) do
  a[k] = v or nil
end

-- ---------------------------------------------------------------------------------------------
-- The step, on the fast path or in any_step.lua. The fast path reads and writes the steps lanes
-- run most: seed 002's (at most one match of one exact header, at most a `set` of one header, the
-- lane header, on a stable Ingress without request header control of its own; on MSE the lane
-- tag for the service subset) and a weight alone. any_step.lua takes every other step, and every
-- step on a canary Ingress with the older bookkeeping (plugin.TestIngressFastPathAgrees switches
-- the fast path off there and requires the same outcome for every golden case).
--
-- Each of matches and requestHeaderModifier is read in one pattern match of its JSON encoding
-- (Kruise's json.encode: Go's encoding/json, keys in sorted order, every character that needs it
-- escaped with a backslash), which costs a fraction of the tokens that reading it field by field
-- would (the cost of a call follows the tokens it parses). A pattern matches only the exact shape
-- above: one match with only `headers`, one header of type Exact (the API server fills the type
-- in, Kruise's CRDs default it to Exact; without one the step goes to any_step.lua, which reads
-- it as Exact); a modifier with only `set`, one header with a value. Names are RFC 7230 tokens
-- and values hold no backslash, so no escaped character (CR, LF, NUL, a quote, any control
-- character) and the captured value is the value itself. Whatever does not match goes to
-- any_step.lua, which accepts it or says why not. An absent list is matched against the empty
-- pattern instead, which spares a weighted step the compile of the long one: its captures are ""
-- and nil, so the decision below needs no test of its own for an absent match, and the writes
-- read hn only with m.
--
-- Kruise's runtime compiles a pattern on every call, at a cost that grows with its items, and
-- steeply past about thirty, so the patterns spell out only what tells the shapes apart: a key
-- the types fix is any quoted string (%b"": a header match is exactly name, type, value; a header
-- exactly name, value), and no pattern ends in `$` (once a pattern has closed the lists and
-- objects it opened, the JSON text ends; `set` is the last of a modifier's keys, add, remove,
-- set, so nothing follows its list).
-- ---------------------------------------------------------------------------------------------
--#embed ANY_STEP any_step.lua
local m, r = obj.matches, obj.requestHeaderModifier
--#if mse
local control = "mse.ingress.kubernetes.io/request-header-control-update"
--#else
local control = "higress.io/request-header-control-update"
--#end
local hn, hv = json.encode(m or ""):match(m and '^%[{"headers":%[{%b"":"([%w!#$%%&\'*+%-.^_`|~]+)",%b"":"Exact",%b"":"([^"\\]*)"}%]}%]' or "")
local sn, sv = json.encode(r or ""):match(r and '^{"set":%[{%b"":"([%w!#$%%&\'*+%-.^_`|~]+)",%b"":"([^"\\]+)"}%]' or "")
--#if mse
-- The lane tag: the value set for the lane header, a label value other than "base" (to..to is a
-- valid label value of two or more characters exactly when to is a valid label value).
local lane = a["kruise-lanes.io/lane-header"] or ""
local tagged = a["mse.ingress.kubernetes.io/service-subset"] and (m or obj.weight ~= "-1" and obj.weight ~= "0")
--#end
-- canary-by-cookie is no header but the cookie pseudo-header, which any_step.lua reads.
if not hn or hn == "canary-by-cookie" or not sn or r and a[control] or a["kruise-lanes.io/owned-keys"]
--#if mse
  or tagged and not (r and sn:lower() == (lane == "" and DEFAULT_LANE_HEADER or lane):lower() and #sv < 64
    and sv ~= "base" and (sv .. sv):find("^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$"))
--#end
then
  loadstring(ANY_STEP)()
else
  -- What the step writes, each key once, in one loop (a function would cost a compile of its
  -- own); a nil value writes nothing. keep records each key's value before the run (already put
  -- back above), the next kruise-lanes.io/owned. any_step.lua writes through its own put, to the
  -- same effect.
  for k, v in pairs {
--#if mse
    ["mse.ingress.kubernetes.io/service-subset"] = tagged and sv or nil,
--#end
    ["nginx.ingress.kubernetes.io/canary-by-header"] = m and hn,
    ["nginx.ingress.kubernetes.io/canary-by-header-value"] = hv,
    ["nginx.ingress.kubernetes.io/canary-weight"] = not m and obj.weight ~= "-1" and obj.weight or nil,
    [control] = r and sn .. " " .. sv
  } do
    keep[k] = a[k] or false
    a[k] = v
  end
end

a["nginx.ingress.kubernetes.io/canary"] = "true"
a["kruise-lanes.io/owned"] = next(keep) and json.encode(keep) or nil
return a
