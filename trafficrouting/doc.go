// Package trafficrouting is the lane domain: what a lane is, which pods are its canary, which
// labels they carry and which mesh routes it needs, and the two controllers that keep pods and
// mesh objects as it decides.
//
// The core is pure: functions of plain inputs that decide and never call the API server.
//   - lane.go, defaults.go, mesh.go: a Kruise TrafficRouting resolved into a Lane (tag, lane
//     header, label dialects, mesh), with the manager's Defaults for what it does not set;
//   - release.go: whether a member Rollout is releasing (Releasing) and whether the lane still
//     routes to it (Routable), from the Kruise v0.6.2 status they read;
//   - role.go: whether a pod is the canary or the stable version of a member's workload (RoleOf),
//     its lane labels (Lane.DesiredLabels) and the change that gets a pod there (LabelChanges);
//   - workload.go: the one adapter for the kinds a Rollout releases (Deployment, StatefulSet,
//     CloneSet): the object to read, its selector, pod template labels and revisions;
//   - mesh_istio.go, mesh_gateway.go: the mesh objects that route one hop (IstioObjects,
//     GatewayObjects);
//   - mesh_diff.go: which of a hop's mesh objects to write or remove (planMesh).
//
// Around it, code that reads the informer cache and decides nothing of its own: the Resolver
// (resolver.go), which finds a pod's workload, Rollout and lane and hands them to the core,
// reading the informers' stores directly where it is given them (indexers.go, IndexersFrom) and
// remembering resolved lanes by version (lanememo.go);
// ResolveWithEntry (entry.go), which reads a lane's entry Ingress; NamespaceScope (scope.go),
// which reads the webhook's namespaceSelector.
//
// And the controllers, which write to the API server what the core decides:
//   - PodLabelReconciler (reconciler.go) patches the lane labels of pods;
//   - MeshRouteReconciler (mesh_reconciler.go; mesh_events.go maps events to the hops they
//     concern, mesh_index.go declares the cache indexes mesh_gather.go reads a hop through,
//     mesh_apply.go creates, updates, drains and deletes the mesh objects a lane owns) writes the
//     east-west routes of istio and gateway-api lanes, one hop per reconcile.
//
// Both emit Events on the objects they act for. The webhook (package webhook) applies the same
// decisions at pod creation; package laneops operates a whole lane for kubectl lanes.
package trafficrouting
