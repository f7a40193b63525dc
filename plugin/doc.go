// Package plugin is everything about Kruise Rollouts' Lua plugin contract: it runs a provider
// script exactly as Kruise v0.6.2 does (its luamanager sandbox, its input shapes and converter),
// replays a Rollout's or TrafficRouting's steps against a stable Ingress the way Kruise's ingress
// controller would, and runs the golden cases that sit beside each script.
package plugin
