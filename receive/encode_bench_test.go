package receive

import (
	"testing"

	"github.com/golang/snappy"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// BenchmarkEncodeV2 measures encodeV2 on the benchmark request of the write path
// (2000 series of 8 node_exporter labels, one sample each; the 2.0 request also
// carries type and help), decoded from either protocol, for a third of the
// series (every third one, as the ring spreads them over three nodes) and for
// all of them. The "gogo" variants are the baseline of building a writev2.Request
// with the Prometheus symbol table and marshaling it.
func BenchmarkEncodeV2(b *testing.B) {
	for _, proto := range []struct {
		name   string
		proto  protocol
		newReq func() benchRequest
	}{
		{name: "rw1", proto: protoV1, newReq: func() benchRequest { return newBenchV1() }},
		{name: "rw2", proto: protoV2, newReq: func() benchRequest { return newBenchV2() }},
	} {
		body, err := snappy.Decode(nil, proto.newReq().next(1_700_000_000_000))
		if err != nil {
			b.Fatal(err)
		}
		req := &request{}
		if proto.proto == protoV1 {
			err = req.decodeV1(body)
		} else {
			err = req.decodeV2(body)
		}
		if err != nil {
			b.Fatal(err)
		}
		var third []int32
		for i := 0; i < len(req.series); i += 3 {
			third = append(third, int32(i))
		}
		for _, sel := range []struct {
			name string
			idx  []int32
		}{
			{name: "third", idx: third},
			{name: "all", idx: seriesIndexes(len(req.series))},
		} {
			b.Run(proto.name+"/"+sel.name, func(b *testing.B) {
				var e encoder
				buf := e.encodeV2(nil, req, sel.idx)
				b.ReportAllocs()
				b.SetBytes(int64(len(buf)))
				for b.Loop() {
					buf = e.encodeV2(buf[:0], req, sel.idx)
				}
				b.ReportMetric(float64(len(buf)), "msg-bytes")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(sel.idx)), "ns/series")
			})
			b.Run(proto.name+"/"+sel.name+"/gogo", func(b *testing.B) {
				var g gogoEncoder
				buf := g.encode(nil, req, sel.idx)
				b.ReportAllocs()
				b.SetBytes(int64(len(buf)))
				for b.Loop() {
					buf = g.encode(buf[:0], req, sel.idx)
				}
				b.ReportMetric(float64(len(buf)), "msg-bytes")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(sel.idx)), "ns/series")
			})
		}
	}
}

// gogoEncoder is the baseline for BenchmarkEncodeV2: float samples and metadata
// of the selected series into a reused writev2.Request, then Marshal.
type gogoEncoder struct {
	st   writev2.SymbolsTable
	req  writev2.Request
	refs []uint32
	smp  []writev2.Sample
}

func (g *gogoEncoder) encode(dst []byte, req *request, idx []int32) []byte {
	if g.st.Symbols() == nil {
		g.st = writev2.NewSymbolTable()
	}
	g.st.Reset()
	g.req.Timeseries = g.req.Timeseries[:0]
	g.refs, g.smp = g.refs[:0], g.smp[:0]
	for _, i := range idx {
		s := &req.series[i]
		lo := len(g.refs)
		for _, l := range req.labels[s.labels.lo:s.labels.hi] {
			g.refs = append(g.refs, g.st.Symbolize(l.name), g.st.Symbolize(l.value))
		}
		slo := len(g.smp)
		for _, smp := range req.samples[s.samples.lo:s.samples.hi] {
			g.smp = append(g.smp, writev2.Sample{Value: smp.v, Timestamp: smp.t, StartTimestamp: smp.st})
		}
		ts := writev2.TimeSeries{LabelsRefs: g.refs[lo:len(g.refs):len(g.refs)], Samples: g.smp[slo:len(g.smp):len(g.smp)]}
		if req.proto == protoV2 {
			ts.Metadata = writev2.Metadata{
				Type:    writev2.Metadata_MetricType(s.meta.typ),
				HelpRef: g.st.Symbolize(req.symbols[s.meta.helpRef]),
				UnitRef: g.st.Symbolize(req.symbols[s.meta.unitRef]),
			}
		}
		g.req.Timeseries = append(g.req.Timeseries, ts)
	}
	g.req.Symbols = g.st.Symbols()
	n := g.req.Size()
	dst = append(dst, make([]byte, n)...)
	if _, err := g.req.MarshalToSizedBuffer(dst[len(dst)-n:]); err != nil {
		panic(err)
	}
	return dst
}
