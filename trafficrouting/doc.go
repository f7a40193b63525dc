// Package trafficrouting is the lane domain. It decides, from plain inputs, what a lane is (a
// Kruise TrafficRouting resolved into a tag, a lane header and label dialects), which Rollouts
// are its members, whether a pod is the canary or the stable version of a member's workload, and
// which labels such a pod must carry. Handlers and reconcilers gather the inputs from the cache
// and apply the decisions; nothing here talks to the API server.
package trafficrouting
