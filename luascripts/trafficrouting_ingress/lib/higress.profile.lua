-- Open-source Higress (class type "higress"): canary keys under nginx.ingress.kubernetes.io/,
-- request header control and extra match conditions under higress.io/.
local PROVIDER = {
  name = "higress",
  headerControlPrefix = "higress.io/",
  queryPrefix = nil,
  matchPrefix = "higress.io/",
  serviceSubset = false,
}
