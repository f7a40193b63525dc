-- MSE ingress (class type "mse"): canary keys under nginx.ingress.kubernetes.io/, MSE-only keys
-- (query canary, request header control, service subset) under mse.ingress.kubernetes.io/.
local PROVIDER = {
  name = "mse",
  headerControlPrefix = "mse.ingress.kubernetes.io/",
  queryPrefix = "mse.ingress.kubernetes.io/",
  matchPrefix = nil,
  serviceSubset = true,
}
