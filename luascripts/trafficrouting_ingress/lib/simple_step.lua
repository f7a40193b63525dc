-- simple_step.lua: the lane step lanes run most (seed 002), in the fewest tokens: one match of
-- one exact header, or none; requestHeaderModifier setting one header (the lane header), or none,
-- on a stable Ingress without request header control of its own; and on MSE the lane tag for the
-- service subset. canary.lua embeds it and runs it (loadstring) under pcall, with its global `a`
-- (the annotations, which it only reads). It returns nil on anything else, including every rule
-- any_step.lua refuses (which then says why); otherwise a table of the keys to write and their
-- values, exactly what any_step.lua would write (plugin.TestIngressSimpleStepAgrees), which
-- canary.lua applies.
--
-- Indexing what is not there (a match without headers, a modifier without set) raises an error
-- here on purpose: under pcall that declines the step like a `return`, and it costs no tokens to
-- guard against. Every header name and value it returns goes through a concatenation in the
-- checks (which raises on anything but a string), so it returns only strings. `none` stands for
-- the header match or the header set a step does not have: the checks read it like the others,
-- and it passes them.
--
-- Names and values are checked in one pattern (Kruise's Lua runtime compiles a pattern on every
-- call): both header names are RFC 7230 tokens, and no value holds CR, LF or NUL.
local m, r, none = obj.matches, obj.requestHeaderModifier, { name = "x", value = "" }
local h, s = m and m[1].headers[1] or none, r and r.set[1] or none
--#if mse
local control = "mse.ingress.kubernetes.io/request-header-control-update"
--#else
local control = "higress.io/request-header-control-update"
--#end
if m and (m[2] or m[1].path or m[1].queryParams or #m[1].headers ~= 1 or (h.type or "Exact") ~= "Exact" or h.name == "canary-by-cookie")
  or r and (r.add or r.remove or #r.set ~= 1 or s.value == "" or a[control])
  or not (h.name .. ":" .. s.name .. ":" .. h.value .. s.value):find("^[A-Za-z0-9!#$%%&'*+%-%.%^_`|~]+:[A-Za-z0-9!#$%%&'*+%-%.%^_`|~]+:[^\r\n%z]*$") then
  return
end

--#if mse
-- The lane tag: the value set for the lane header, a label value other than "base" (to..to is a
-- valid label value of two or more characters exactly when to is a valid label value).
local lane = a["kruise-lanes.io/lane-header"] or ""
local tagged = a["mse.ingress.kubernetes.io/service-subset"] and (m or obj.weight ~= "-1" and obj.weight ~= "0")
if tagged and not (r and s.name:lower() == (lane == "" and DEFAULT_LANE_HEADER or lane):lower() and #s.value < 64
    and s.value ~= "base" and (s.value .. s.value):find("^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$")) then
  return
end
--#end

-- What the step writes, each key once.
local w = {}
if m then
  w["nginx.ingress.kubernetes.io/canary-by-header"] = h.name
  w["nginx.ingress.kubernetes.io/canary-by-header-value"] = h.value
elseif obj.weight ~= "-1" then
  w["nginx.ingress.kubernetes.io/canary-weight"] = obj.weight
end
if r then
  w[control] = s.name .. " " .. s.value
end
--#if mse
if tagged then
  w["mse.ingress.kubernetes.io/service-subset"] = s.value
end
--#end
return w
