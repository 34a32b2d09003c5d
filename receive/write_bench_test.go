package receive

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stratametrics/strata/limits"
)

const (
	benchInstances         = 20
	benchSeriesPerInstance = 100
	benchSeries            = benchInstances * benchSeriesPerInstance
)

var (
	benchNames = []string{
		"node_cpu_seconds_total", "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
		"node_disk_read_bytes_total", "node_disk_written_bytes_total", "node_disk_io_time_seconds_total",
		"node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_memory_MemAvailable_bytes", "node_vmstat_pgfault",
	}
	benchModes = []string{"idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"}
)

// benchLabels returns the 8 labels of bench series i, node_exporter style.
func benchLabels(i int) []string {
	inst, k := i/benchSeriesPerInstance, i%benchSeriesPerInstance
	return []string{
		"__name__", benchNames[k%len(benchNames)],
		"cluster", "prod-eu-west-1",
		"device", fmt.Sprintf("nvme%dn1", k/len(benchNames)),
		"env", "production",
		"instance", fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal:9100", inst/8, inst),
		"job", "node-exporter",
		"mode", benchModes[k%len(benchModes)],
		"region", "eu-west-1",
	}
}

// benchRequest makes request bodies of benchSeries series with one sample each,
// at a timestamp that advances with every call, the way a Prometheus shard sends
// them.
type benchRequest interface {
	next(t int64) []byte
	headers() map[string]string
}

type benchV1 struct {
	req      prompb.WriteRequest
	pb, body []byte
}

func newBenchV1() *benchV1 {
	b := &benchV1{}
	for i := range benchSeries {
		b.req.Timeseries = append(b.req.Timeseries, prompb.TimeSeries{Labels: lbls(benchLabels(i)...), Samples: make([]prompb.Sample, 1)})
	}
	return b
}

func (b *benchV1) next(t int64) []byte {
	for i := range b.req.Timeseries {
		b.req.Timeseries[i].Samples[0] = prompb.Sample{Value: float64(t/1000 + int64(i)), Timestamp: t}
	}
	return b.encode(&b.req)
}

func (b *benchV1) encode(m interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
},
) []byte {
	n := m.Size()
	if cap(b.pb) < n {
		b.pb = make([]byte, n)
	}
	b.pb = b.pb[:n]
	if _, err := m.MarshalToSizedBuffer(b.pb); err != nil {
		panic(err)
	}
	b.body = snappy.Encode(b.body[:cap(b.body)], b.pb)
	return b.body
}

func (*benchV1) headers() map[string]string { return nil }

type benchV2 struct {
	benchV1
	req2 writev2.Request
}

func newBenchV2() *benchV2 {
	b := &benchV2{}
	st := writev2.NewSymbolTable()
	for i := range benchSeries {
		ls := benchLabels(i)
		refs := make([]uint32, 0, len(ls))
		for _, s := range ls {
			refs = append(refs, st.Symbolize(s))
		}
		b.req2.Timeseries = append(b.req2.Timeseries, writev2.TimeSeries{
			LabelsRefs: refs,
			Samples:    make([]writev2.Sample, 1),
			Metadata: writev2.Metadata{
				Type:    writev2.Metadata_METRIC_TYPE_COUNTER,
				HelpRef: st.Symbolize("Help text of " + ls[1] + "."),
				UnitRef: st.Symbolize(""),
			},
		})
	}
	b.req2.Symbols = st.Symbols()
	return b
}

func (b *benchV2) next(t int64) []byte {
	for i := range b.req2.Timeseries {
		b.req2.Timeseries[i].Samples[0] = writev2.Sample{Value: float64(t/1000 + int64(i)), Timestamp: t}
	}
	return b.encode(&b.req2)
}

func (*benchV2) headers() map[string]string { return v2Headers }

// discardWriter is a reusable http.ResponseWriter.
type discardWriter struct {
	hdr  http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.hdr }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkWritePath measures the whole write path: ServeHTTP with a snappy body
// of 2000 series of 8 labels, one sample each, through decoding, validation,
// append and commit into a real TSDB. Bodies are encoded outside the timer.
// The "no series cache" variants give the handler no slot for its series
// cache, and the "plain appender" variants also hide storage.GetRef, as a
// storage wrapper that forwards neither would.
func BenchmarkWritePath(b *testing.B) {
	for _, bc := range []struct {
		name       string
		newReq     func() benchRequest
		hideGetRef bool
		noCache    bool
		limits     bool // every limit set, none hit
	}{
		{name: "rw1", newReq: func() benchRequest { return newBenchV1() }},
		{name: "rw2", newReq: func() benchRequest { return newBenchV2() }},
		{name: "rw1_no_series_cache", newReq: func() benchRequest { return newBenchV1() }, noCache: true},
		{name: "rw2_no_series_cache", newReq: func() benchRequest { return newBenchV2() }, noCache: true},
		{name: "rw1_plain_appender", newReq: func() benchRequest { return newBenchV1() }, hideGetRef: true},
		{name: "rw2_plain_appender", newReq: func() benchRequest { return newBenchV2() }, hideGetRef: true},
		{name: "rw1_limits", newReq: func() benchRequest { return newBenchV1() }, limits: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			store := newTestStorage(b, nil)
			store.hideGetRef = bc.hideGetRef
			store.noSeriesCache = bc.noCache
			var opts Options
			if bc.limits {
				lim, err := limits.NewOverrides("", limits.Limits{
					IngestionRate: 1e12, MaxActiveSeries: 1e9, MaxLabelsPerSeries: 40,
					MaxLabelNameLength: 128, MaxLabelValueLength: 2048, MaxRequestBytes: 1 << 30, MaxExemplars: 100,
				}, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				opts.Limits = lim
			}
			h := NewHandler(opts, store, prometheus.NewRegistry(), nil)
			gen := bc.newReq()
			w := &discardWriter{hdr: http.Header{}}
			r, err := http.NewRequest(http.MethodPost, Path, nil)
			if err != nil {
				b.Fatal(err)
			}
			for k, v := range map[string]string{"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"} {
				r.Header.Set(k, v)
			}
			for k, v := range gen.headers() {
				r.Header.Set(k, v)
			}
			rd := bytes.NewReader(nil)
			send := func(t int64) {
				body := gen.next(t)
				rd.Reset(body)
				r.Body = io.NopCloser(rd)
				r.ContentLength = int64(len(body))
				clear(w.hdr)
				h.ServeHTTP(w, r)
				if w.code != http.StatusNoContent {
					b.Fatalf("status %d", w.code)
				}
			}
			// Warm up: create the series, as in steady state.
			ts := time.Now().Add(-time.Hour).UnixMilli()
			send(ts)

			var ms runtime.MemStats
			var mallocs uint64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ts += 1000
				body := gen.next(ts)
				rd.Reset(body)
				r.Body = io.NopCloser(rd)
				r.ContentLength = int64(len(body))
				clear(w.hdr)
				runtime.ReadMemStats(&ms)
				before := ms.Mallocs
				b.StartTimer()

				h.ServeHTTP(w, r)

				b.StopTimer()
				runtime.ReadMemStats(&ms)
				mallocs += ms.Mallocs - before
				if w.code != http.StatusNoContent {
					b.Fatalf("status %d", w.code)
				}
				b.StartTimer()
			}
			b.StopTimer()
			samples := float64(b.N) * benchSeries
			b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(mallocs)/samples, "allocs/sample")
		})
	}
}
