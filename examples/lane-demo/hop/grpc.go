package hop

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The gRPC API of a hop, written by hand as protoc-gen-go-grpc would generate it from
//
//	package lanedemo.v1;
//	service Hop { rpc Call(google.protobuf.StringValue) returns (google.protobuf.StringValue); }
//
// The request is the path, the response the answer line without its trailing newline.
const (
	// ServiceName is the full name of the gRPC service.
	ServiceName = "lanedemo.v1.Hop"
	// CallMethod is the full name of the Call method, as seen by interceptors.
	CallMethod = "/" + ServiceName + "/Call"
)

// HopServer is the server API of lanedemo.v1.Hop.
type HopServer interface { //nolint:revive // named as protoc-gen-go-grpc names it, like the rest of this file
	Call(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

// ServiceDesc returns the grpc.ServiceDesc of lanedemo.v1.Hop, for grpc.Server.RegisterService
// with a HopServer.
func ServiceDesc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: ServiceName,
		HandlerType: (*HopServer)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Call",
			Handler:    callHandler,
		}},
		Metadata: "lanedemo/v1/hop.proto",
	}
}

//nolint:revive // the parameter order of grpc.MethodHandler, which this implements
func callHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(HopServer).Call(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: CallMethod}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(HopServer).Call(ctx, req.(*wrapperspb.StringValue))
	}
	return interceptor(ctx, in, info, handler)
}

// HopClient is the typed client of lanedemo.v1.Hop.
type HopClient struct { //nolint:revive // named as protoc-gen-go-grpc names it, like the rest of this file
	cc grpc.ClientConnInterface
}

// NewHopClient returns a HopClient calling over cc.
func NewHopClient(cc grpc.ClientConnInterface) *HopClient {
	return &HopClient{cc: cc}
}

// Call calls lanedemo.v1.Hop/Call with path and returns the answer line.
func (c *HopClient) Call(ctx context.Context, path *wrapperspb.StringValue, opts ...grpc.CallOption) (*wrapperspb.StringValue, error) {
	out := new(wrapperspb.StringValue)
	if err := c.cc.Invoke(ctx, CallMethod, path, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

// unsentRetries are the pauses before sending again a call that reached no server: 775 ms in all.
func unsentRetries() []time.Duration {
	return []time.Duration{25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
}

// CallHop calls Call the way a mesh hop should, and as the lane demo does: a call that reached
// no server (the channel failed it before any server saw it) is sent again after a short pause,
// at most five times within 775 ms. A mesh delivers routes and endpoints in separate xDS updates,
// so for a moment around a change grpc-go's xDS client can fail an RPC it routed to a cluster
// whose endpoints are gone or that the update removed ("weighted-target: no targets to pick
// from", "unknown cluster selected for RPC"); each new attempt is routed afresh. gRPC's own
// retries do not cover that (an RPC's cluster is chosen once), and waiting for the channel to be
// ready does not either (the RPC waits on the cluster it was routed to). A call a server
// answered, even with an error, is never sent again, and a route to a destination that stays
// empty still fails, after the pauses. Istio's default retry policy does the same for sidecars.
func CallHop(ctx context.Context, c *HopClient, path string) (*wrapperspb.StringValue, error) {
	pauses := unsentRetries()
	for attempt := 0; ; attempt++ {
		var p peer.Peer
		out, err := c.Call(ctx, wrapperspb.String(path), grpc.Peer(&p))
		if err == nil || p.Addr != nil || attempt == len(pauses) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(pauses[attempt]):
		}
	}
}
