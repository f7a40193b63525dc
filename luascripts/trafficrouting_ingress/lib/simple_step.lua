-- simple_step.lua: the lane step lanes run most (seed 002), in the fewest tokens: one match of
-- one exact header, or none; requestHeaderModifier setting one header (the lane header), or none,
-- on a stable Ingress without request header control of its own; and on MSE the lane tag for the
-- service subset. canary.lua embeds it and runs it (loadstring) with the arguments of
-- any_step.lua. It checks the whole step first and returns nil, having written nothing, on
-- anything else, including every rule any_step.lua refuses (which then says why); otherwise it
-- writes exactly what any_step.lua would (plugin.TestIngressSimpleStepAgrees) and returns true.
--
-- Names and values are checked together, in one pattern each (Kruise's Lua runtime compiles a
-- pattern on every call): both header names are RFC 7230 tokens, no value holds CR, LF or NUL.
local a, put, DEFAULT_LANE_HEADER = ...
local matches, modifier = obj.matches, obj.requestHeaderModifier
local match = matches and #matches == 1 and matches[1]
local header = match and not match.path and not match.queryParams and match.headers and #match.headers == 1 and match.headers[1]
local line = modifier and not modifier.add and not modifier.remove and modifier.set and #modifier.set == 1 and modifier.set[1]
local name, value, set, to = header and header.name, header and header.value, line and line.name, line and line.value
--#if mse
local control = "mse.ingress.kubernetes.io/request-header-control-update"
--#else
local control = "higress.io/request-header-control-update"
--#end
if matches and not (header and (header.type or "Exact") == "Exact" and name ~= "canary-by-cookie")
  or modifier and not (line and to ~= "" and (a[control] or "") == "")
  or not ((name or "x") .. ":" .. (set or "x")):find("^[A-Za-z0-9!#$%%&'*+%-%.%^_`|~]+:[A-Za-z0-9!#$%%&'*+%-%.%^_`|~]+$")
  or ((value or "") .. (to or "")):find("[\r\n%z]") then
  return
end

--#if mse
-- The lane tag: the value set for the lane header, a label value other than "base" (to..to is a
-- valid label value of two or more characters exactly when to is a valid label value).
local lane = a["kruise-lanes.io/lane-header"] or ""
local tagged = a["mse.ingress.kubernetes.io/service-subset"] and (name or obj.weight ~= "-1" and obj.weight ~= "0")
if tagged and not (set and set:lower() == (lane == "" and DEFAULT_LANE_HEADER or lane):lower() and #to < 64
    and to ~= "base" and (to .. to):find("^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$")) then
  return
end
--#end

if name then
  put("nginx.ingress.kubernetes.io/canary-by-header", name)
  put("nginx.ingress.kubernetes.io/canary-by-header-value", value)
elseif obj.weight ~= "-1" then
  put("nginx.ingress.kubernetes.io/canary-weight", obj.weight)
end
if set then
  put(control, set .. " " .. to)
end
--#if mse
if tagged then
  put("mse.ingress.kubernetes.io/service-subset", to)
end
--#end
return true
