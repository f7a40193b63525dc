// Package hop is one hop of the lane demo call chain (A -> B -> C): it decides what a hop
// answers for a request, given the lane of its own pod, the request's lane headers and the
// answer of its downstream hop.
//
// A hop answers one line, "<hop> -> <downstream answer>", where <hop> is "NAME[LANE]" (the pod's
// lane, read from the downward-API labels file and re-read whenever kubelet rewrites it) or
// "NAME(version: VERSION)". It copies the lane headers it received (x-mse-tag,
// x-asm-prefer-tag, W3C baggage by default) onto its downstream call, drops header values that
// are not printable ASCII, and counts every answer per request lane in Prometheus metrics. The
// same answer is served over HTTP (any GET path) and over gRPC (unary method Call of service
// lanedemo.v1.Hop, request and response google.protobuf.StringValue); the downstream is an
// HTTP URL, a plain gRPC address or an xDS name resolved by grpc-go's xds resolver.
//
// Configuration comes from environment variables (see ParseEnv); Run serves a Config until its
// context ends.
package hop
