package receive

import (
	"context"
	"testing"
	"time"

	"github.com/golang/snappy"
)

// BenchmarkStages measures each stage of the write path on its own, over the
// request of BenchmarkWritePath (2000 series of 8 labels, one sample each), so
// that a regression shows up in the stage that caused it:
//
//   - decode: snappy and protobuf decoding of the body;
//   - validate: what a series the cache does not know costs before storage
//     (label checks, building labels, hashing);
//   - cache_lookup: what a known series costs instead (hash as sent, lookup,
//     label comparison);
//   - append: appending the decoded request to a real TSDB and committing,
//     with a warm series cache.
//
// Routing is measured by BenchmarkRouter, the whole path by BenchmarkWritePath.
func BenchmarkStages(b *testing.B) {
	ts := time.Now().Add(-time.Hour).UnixMilli()
	for _, bc := range []struct {
		name   string
		newReq func() benchRequest
		v2     bool
	}{
		{name: "rw1", newReq: func() benchRequest { return newBenchV1() }},
		{name: "rw2", newReq: func() benchRequest { return newBenchV2() }, v2: true},
	} {
		decode := func(bt *batch, body []byte) {
			var err error
			if bt.data, err = snappy.Decode(bt.data[:cap(bt.data)], body); err != nil {
				b.Fatal(err)
			}
			bt.req.reset()
			bt.lookupCache = nil // as Handler.release does: lookups belong to one request
			if bc.v2 {
				err = bt.req.decodeV2(bt.data)
			} else {
				err = bt.req.decodeV1(bt.data)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		body := append([]byte(nil), bc.newReq().next(ts)...)

		b.Run(bc.name+"/decode", func(b *testing.B) {
			bt := newBatch()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				decode(bt, body)
			}
			reportPerSample(b)
		})

		b.Run(bc.name+"/validate", func(b *testing.B) {
			bt := newBatch()
			decode(bt, body)
			req := &bt.req
			var sink uint64
			for b.Loop() {
				for i := range req.series {
					sl := req.labels[req.series[i].labels.lo:req.series[i].labels.hi]
					if _, err := checkSeriesLabels(sl, req.validUTF8); err != nil {
						b.Fatal(err)
					}
					buildLabels(&bt.b, sl)
					bt.b.Overwrite(&bt.ls)
					sink += bt.ls.Hash()
				}
			}
			_ = sink
			reportPerSample(b)
		})

		b.Run(bc.name+"/cache_lookup", func(b *testing.B) {
			store := newTestStorage(b, nil)
			h := NewHandler(Options{}, store, nil, nil)
			if w := post(h, body, bc.newReq().headers()); w.Code/100 != 2 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
			cache := store.cache(DefaultTenant)
			bt := newBatch()
			decode(bt, body)
			req := &bt.req
			for b.Loop() {
				for i := range req.series {
					if lk := cache.lookup(req.labels[req.series[i].labels.lo:req.series[i].labels.hi]); !lk.hit {
						b.Fatal("a known series missed the cache")
					}
				}
			}
			reportPerSample(b)
		})

		b.Run(bc.name+"/append", func(b *testing.B) {
			store := newTestStorage(b, nil)
			gen := bc.newReq()
			bt := newBatch()
			t := ts
			appendDecoded := func() {
				app, err := store.TenantAppender(context.Background(), DefaultTenant)
				if err != nil {
					b.Fatal(err)
				}
				if err := bt.write(app, writeOptions{maxT: 1 << 62}); err != nil {
					b.Fatal(err)
				}
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
				if bt.res.rejected() {
					b.Fatalf("rejected: %s", bt.res.firstError)
				}
				t += 1000
			}
			decode(bt, gen.next(t))
			appendDecoded() // create the series
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				decode(bt, gen.next(t))
				b.StartTimer()
				appendDecoded()
			}
			reportPerSample(b)
		})
	}
}

// reportPerSample reports ns/sample for a benchmark whose operation handles one
// request of benchSeries samples.
func reportPerSample(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchSeries, "ns/sample")
}
