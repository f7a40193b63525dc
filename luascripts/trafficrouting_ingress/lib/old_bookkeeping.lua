-- old_bookkeeping.lua: reads the bookkeeping of the scripts before kruise-lanes.io/owned into the
-- map canary.lua puts back. Those scripts listed the keys they wrote in kruise-lanes.io/owned-keys
-- (a comma list) and the stable Ingress's values for some of them in kruise-lanes.io/preserved (a
-- JSON object): a listed key without a preserved value had none. canary.lua embeds it and runs it
-- (loadstring) only on a canary Ingress that carries either annotation, with the entry's globals
-- `a` (the annotations), `kept` (the map to put back) and REFUSAL.
local preserved = json.decode(a["kruise-lanes.io/preserved"] ~= "" and a["kruise-lanes.io/preserved"] or "{}")
if type(preserved) ~= "table" then
  error(REFUSAL .. "annotation kruise-lanes.io/preserved is not valid JSON; restore it from the stable Ingress or delete the canary Ingress", 0)
end
for k in ((a["kruise-lanes.io/owned-keys"] or "") .. ","):gmatch("([^,]*),") do
  kept[k] = false
end
for k, v in pairs(preserved) do
  kept[k] = v
end
kept[""] = nil
a["kruise-lanes.io/owned-keys"], a["kruise-lanes.io/preserved"] = nil, nil
