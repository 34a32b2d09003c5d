package receive

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/golang/snappy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The replication service carries one node's share of a routed write request to
// that node. Its messages are google.protobuf.BytesValue wrappers around the
// frames below, so that it rides on the standard gRPC codec next to the Store API:
//
//	forward request:  1: tenant (string), 2: payload (bytes), 3: payload encoding (varint):
//	                  0 (or absent) an uncompressed Remote Write 2.0 Request, made for
//	                  this peer; 1 or 2 the request body as the router received it,
//	                  snappy-compressed Remote Write 1.0 or 2.0, when the peer owns
//	                  every series in it
//	forward response: 1: samples written, 2: histograms written, 3: exemplars written,
//	                  4: rejected series (packed varint indexes into the payload's series),
//	                  5: rejected samples of each (packed varint, parallel to 4),
//	                  6: message describing the first rejection (string)
//
// A transient failure (not ready, storage error) is the gRPC status Unavailable;
// a payload that cannot be decoded is InvalidArgument. A forwarded request is
// written locally and never forwarded again.
const (
	replicationService = "strata.receive.v1.Replication"
	replicationWrite   = "/" + replicationService + "/Write"
)

// forwardResponse is a peer's answer for the series it was sent.
type forwardResponse struct {
	samples, histograms, exemplars int
	rejected                       []int32 // series indexes, in the forwarded payload
	rejectedSamples                []int32 // parallel to rejected
	message                        string
	// limited are the series refused by the tenant's active series limit (by
	// index, with limitedSamples samples in all), limitMessage the first.
	limited        []int32
	limitedSamples int
	limitMessage   string
}

// forwardEncoding is how a forwarded payload is encoded.
type forwardEncoding uint64

const (
	forwardV2      forwardEncoding = 0 // uncompressed Remote Write 2.0, made for the peer
	forwardSnappy1 forwardEncoding = 1 // the received body: snappy, Remote Write 1.0
	forwardSnappy2 forwardEncoding = 2 // the received body: snappy, Remote Write 2.0
)

func appendForwardRequest(dst []byte, tenant string, payload []byte, enc forwardEncoding) []byte {
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	dst = protowire.AppendString(dst, tenant)
	dst = protowire.AppendTag(dst, 2, protowire.BytesType)
	dst = protowire.AppendBytes(dst, payload)
	if enc != forwardV2 {
		dst = protowire.AppendTag(dst, 3, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(enc))
	}
	return dst
}

// parseForwardRequest returns the tenant, payload and payload encoding of a
// frame; the payload aliases b.
func parseForwardRequest(b []byte) (tenant string, payload []byte, enc forwardEncoding, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", nil, 0, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", nil, 0, protowire.ParseError(n)
			}
			tenant, b = string(v), b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", nil, 0, protowire.ParseError(n)
			}
			payload, b = v, b[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return "", nil, 0, protowire.ParseError(n)
			}
			enc, b = forwardEncoding(v), b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return "", nil, 0, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return tenant, payload, enc, nil
}

func (r *forwardResponse) marshal() []byte {
	var b []byte
	for _, f := range []struct {
		num protowire.Number
		v   int
	}{{1, r.samples}, {2, r.histograms}, {3, r.exemplars}, {8, r.limitedSamples}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(f.v))
		}
	}
	for _, f := range []struct {
		num protowire.Number
		vs  []int32
	}{{4, r.rejected}, {5, r.rejectedSamples}, {7, r.limited}} {
		if len(f.vs) == 0 {
			continue
		}
		var packed []byte
		for _, v := range f.vs {
			packed = protowire.AppendVarint(packed, uint64(v))
		}
		b = protowire.AppendTag(b, f.num, protowire.BytesType)
		b = protowire.AppendBytes(b, packed)
	}
	for _, f := range []struct {
		num protowire.Number
		v   string
	}{{6, r.message}, {9, r.limitMessage}} {
		if f.v != "" {
			b = protowire.AppendTag(b, f.num, protowire.BytesType)
			b = protowire.AppendString(b, f.v)
		}
	}
	return b
}

func (r *forwardResponse) unmarshal(b []byte) error {
	*r = forwardResponse{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case (num >= 1 && num <= 3 || num == 8) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			*map[protowire.Number]*int{1: &r.samples, 2: &r.histograms, 3: &r.exemplars, 8: &r.limitedSamples}[num] = int(v)
		case (num == 4 || num == 5 || num == 7) && typ == protowire.BytesType:
			packed, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			dst := map[protowire.Number]*[]int32{4: &r.rejected, 5: &r.rejectedSamples, 7: &r.limited}[num]
			for len(packed) > 0 {
				v, n := protowire.ConsumeVarint(packed)
				if n < 0 {
					return protowire.ParseError(n)
				}
				packed = packed[n:]
				*dst = append(*dst, int32(v))
			}
		case (num == 6 || num == 9) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			dst := &r.message
			if num == 9 {
				dst = &r.limitMessage
			}
			*dst, b = string(v), b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	if len(r.rejected) != len(r.rejectedSamples) {
		return fmt.Errorf("%d rejected series but %d rejected sample counts", len(r.rejected), len(r.rejectedSamples))
	}
	return nil
}

// addOutcome adds the rejected and limited series of res to r. sel are the
// series res was written with, in request order (nil: all of them); r names
// them by their position in sel, which is their index in what the peer sent.
func (r *forwardResponse) addOutcome(res *result, sel []int32) {
	at := func(k int) int {
		if sel == nil {
			return k
		}
		return int(sel[k])
	}
	n := len(res.perSeries)
	if sel != nil {
		n = len(sel)
	}
	if res.rejected() {
		r.message = fmt.Sprintf("%s: %s", res.firstSeries, res.firstError)
		for k := range n {
			if c := res.perSeries[at(k)]; c > 0 {
				r.rejected = append(r.rejected, int32(k))
				r.rejectedSamples = append(r.rejectedSamples, c)
			}
		}
	}
	if res.limitedSeries > 0 {
		r.limitMessage, r.limitedSamples = res.firstLimit, res.limitedSamples
		for k := range n {
			if res.limited[at(k)] {
				r.limited = append(r.limited, int32(k))
			}
		}
	}
}

// replicationServer is the interface the gRPC service description requires.
type replicationServer interface {
	forwardedWrite(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error)
}

// RegisterReplication serves the replication service on srv: writes forwarded by
// other receivers are appended to this node's storage. The handler must have storage.
func (h *Handler) RegisterReplication(srv *grpc.Server) {
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: replicationService,
		HandlerType: (*replicationServer)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Write",
			Handler: func(s any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.BytesValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				call := func(ctx context.Context, req any) (any, error) {
					return s.(replicationServer).forwardedWrite(ctx, req.(*wrapperspb.BytesValue))
				}
				if icpt == nil {
					return call(ctx, in)
				}
				return icpt(ctx, in, &grpc.UnaryServerInfo{Server: s, FullMethod: replicationWrite}, call)
			},
		}},
		Metadata: "strata/receive/replication",
	}, h)
}

// forwardedWrite appends a peer's forwarded share of a request to local storage.
func (h *Handler) forwardedWrite(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	if h.store == nil {
		return nil, status.Error(codes.FailedPrecondition, "this receiver is a router and stores nothing")
	}
	tenant, payload, enc, err := parseForwardRequest(in.GetValue())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode forwarded request: %v", err)
	}
	if err := ValidateTenant(tenant); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	b := h.pool.Get().(*batch)
	defer h.release(b)
	if err := h.decodeForwarded(b, payload, enc); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode forwarded payload: %v", err)
	}
	code, msg := h.appendLocal(ctx, tenant, b, writeOptions{track: true})
	h.metrics.forwardedWrites.WithLabelValues(statusLabel(code)).Inc()
	if code == http.StatusServiceUnavailable {
		return nil, status.Error(codes.Unavailable, msg)
	}
	res := &b.res
	resp := forwardResponse{samples: res.samples, histograms: res.histograms, exemplars: res.exemplars}
	resp.addOutcome(res, nil)
	return &wrapperspb.BytesValue{Value: resp.marshal()}, nil
}

// forwardError classifies a failed forward: permanent errors say the peer will
// never take these series; everything else is worth retrying.
func forwardPermanent(err error) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.InvalidArgument && !errors.Is(err, context.DeadlineExceeded)
}

// decodeForwarded decodes a forwarded payload into b.
func (h *Handler) decodeForwarded(b *batch, payload []byte, enc forwardEncoding) error {
	switch enc {
	case forwardV2:
		return b.req.decodeV2(payload)
	case forwardSnappy1, forwardSnappy2:
		n, err := snappy.DecodedLen(payload)
		if err != nil {
			return fmt.Errorf("decode snappy: %w", err)
		}
		if int64(n) > h.opts.MaxDecompressedBytes {
			return fmt.Errorf("decompressed payload of %d bytes exceeds the limit of %d bytes", n, h.opts.MaxDecompressedBytes)
		}
		if cap(b.data) < n {
			b.data = make([]byte, n)
		}
		if b.data, err = snappy.Decode(b.data[:cap(b.data)], payload); err != nil {
			return fmt.Errorf("decode snappy: %w", err)
		}
		if enc == forwardSnappy1 {
			return b.req.decodeV1(b.data)
		}
		return b.req.decodeV2(b.data)
	default:
		return fmt.Errorf("unknown payload encoding %d", enc)
	}
}
