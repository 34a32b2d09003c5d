package receive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"
)

// testOOOWindow is the out-of-order window of test TSDBs.
const testOOOWindow = 30 * time.Minute

// testStorage implements TenantStorage with one real TSDB per tenant, opened on
// first use in a temporary directory, configured like tsdbshard configures them.
type testStorage struct {
	tb   testing.TB
	dir  string
	opts func(*tsdb.Options)

	mtx sync.Mutex
	dbs map[string]*tsdb.DB

	// err, if set, is returned by TenantAppender instead of an appender.
	err error
	// wrap, if set, wraps each appender: fault injection around the real one.
	wrap func(storage.AppenderV2) storage.AppenderV2
	// hideGetRef hides the appender's storage.GetRef, as a wrapper that does not
	// forward it would.
	hideGetRef bool
	// noSeriesCache gives the handler no slot for its series cache.
	noSeriesCache bool
	slots         map[string]*atomic.Value
}

// cachingAppender is a TSDB appender with a series cache slot, as tsdbshard's.
type cachingAppender struct {
	storage.AppenderV2
	slot *atomic.Value
}

func (a cachingAppender) SeriesCacheSlot() *atomic.Value { return a.slot }

func (a cachingAppender) GetRef(lset labels.Labels, hash uint64) (storage.SeriesRef, labels.Labels) {
	return a.AppenderV2.(storage.GetRef).GetRef(lset, hash)
}

func newTestStorage(tb testing.TB, mod func(*tsdb.Options)) *testStorage {
	s := &testStorage{tb: tb, dir: tb.TempDir(), opts: mod, dbs: map[string]*tsdb.DB{}}
	tb.Cleanup(func() {
		s.mtx.Lock()
		defer s.mtx.Unlock()
		for name, db := range s.dbs {
			require.NoError(tb, db.Close(), "close tenant %s", name)
		}
	})
	return s
}

func (s *testStorage) TenantAppender(ctx context.Context, tenant string) (storage.AppenderV2, error) {
	if s.err != nil {
		return nil, s.err
	}
	db, err := s.open(tenant)
	if err != nil {
		return nil, err
	}
	app := db.AppenderV2(ctx)
	switch {
	case s.hideGetRef:
		app = struct{ storage.AppenderV2 }{app}
	case !s.noSeriesCache:
		app = cachingAppender{AppenderV2: app, slot: s.slot(tenant)}
	}
	if s.wrap != nil {
		app = s.wrap(app)
	}
	return app, nil
}

func (s *testStorage) open(tenant string) (*tsdb.DB, error) {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	if db, ok := s.dbs[tenant]; ok {
		return db, nil
	}
	o := tsdb.DefaultOptions()
	o.OutOfOrderTimeWindow = testOOOWindow.Milliseconds()
	o.EnableExemplarStorage = true
	o.MaxExemplars = 1000
	o.EnableSTAsZeroSample = true
	o.EnableMetadataWALRecords = true
	if s.opts != nil {
		s.opts(o)
	}
	db, err := tsdb.Open(filepath.Join(s.dir, tenant), nil, nil, o, nil)
	if err != nil {
		return nil, err
	}
	s.dbs[tenant] = db
	return db, nil
}

// slot returns the tenant's series cache slot.
func (s *testStorage) slot(tenant string) *atomic.Value {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	if s.slots == nil {
		s.slots = map[string]*atomic.Value{}
	}
	if s.slots[tenant] == nil {
		s.slots[tenant] = &atomic.Value{}
	}
	return s.slots[tenant]
}

// SeriesCacheSlot implements TenantSeriesCaches.
func (s *testStorage) SeriesCacheSlot(tenant string) *atomic.Value {
	if s.noSeriesCache || s.hideGetRef {
		return nil
	}
	return s.slot(tenant)
}

// cache returns the handler's series cache of tenant, or nil.
func (s *testStorage) cache(tenant string) *seriesCache {
	c, _ := s.slot(tenant).Load().(*seriesCache)
	return c
}

// db returns the tenant's TSDB, or nil if nothing ever opened it.
func (s *testStorage) db(tenant string) *tsdb.DB {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	return s.dbs[tenant]
}

func (s *testStorage) tenants() []string {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	var names []string
	for n := range s.dbs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// dump is every sample of a TSDB: series labels (as a string) to samples.
type dump map[string][]string

// dumpTenant reads all data of a tenant; a tenant without a TSDB has none.
func (s *testStorage) dump(tenant string) dump {
	s.tb.Helper()
	db := s.db(tenant)
	if db == nil {
		return dump{}
	}
	return dumpDB(s.tb, db)
}

func dumpDB(tb testing.TB, db *tsdb.DB) dump {
	tb.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(tb, err)
	defer func() { require.NoError(tb, q.Close()) }()
	ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+"))
	out := dump{}
	var it chunkenc.Iterator
	for ss.Next() {
		series := ss.At()
		it = series.Iterator(it)
		var samples []string
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			switch vt {
			case chunkenc.ValFloat:
				t, v := it.At()
				samples = append(samples, fmt.Sprintf("%d:%s", t, formatFloat(v)))
			case chunkenc.ValHistogram:
				t, h := it.AtHistogram(nil)
				samples = append(samples, fmt.Sprintf("%d:%s", t, formatHistogram(h, nil)))
			case chunkenc.ValFloatHistogram:
				t, fh := it.AtFloatHistogram(nil)
				samples = append(samples, fmt.Sprintf("%d:%s", t, formatHistogram(nil, fh)))
			}
		}
		require.NoError(tb, it.Err())
		out[series.Labels().String()] = samples
	}
	require.NoError(tb, ss.Err())
	return out
}

// formatFloat formats a sample value, telling stale markers from other NaNs.
func formatFloat(v float64) string {
	if value.IsStaleNaN(v) {
		return "stale"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// formatHistogram formats a histogram sample without its reset hint, which
// storage may change (for example to mark a counter reset).
func formatHistogram(h *histogram.Histogram, fh *histogram.FloatHistogram) string {
	if h != nil {
		c := h.Copy()
		c.CounterResetHint = histogram.UnknownCounterReset
		return "h" + c.String()
	}
	c := fh.Copy()
	c.CounterResetHint = histogram.UnknownCounterReset
	return "fh" + c.String()
}

func sampleCount(d dump) int {
	n := 0
	for _, s := range d {
		n += len(s)
	}
	return n
}

// instantRead evaluates an instant selector like PromQL does: for each series the
// newest sample at or before t within the 5m lookback, and a series whose newest
// sample is a stale marker is absent. Histogram samples are returned as their sum.
func instantRead(tb testing.TB, db *tsdb.DB, t int64, ms ...*labels.Matcher) map[string]float64 {
	tb.Helper()
	const lookback = 5 * time.Minute
	q, err := db.Querier(t-lookback.Milliseconds()+1, t)
	require.NoError(tb, err)
	defer func() { require.NoError(tb, q.Close()) }()
	out := map[string]float64{}
	ss := q.Select(context.Background(), true, nil, ms...)
	for ss.Next() {
		it := ss.At().Iterator(nil)
		var (
			last  float64
			found bool
		)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			// Histograms are read as their sum, which is what marks them stale.
			var (
				ts int64
				v  float64
			)
			switch vt {
			case chunkenc.ValFloat:
				ts, v = it.At()
			case chunkenc.ValHistogram:
				var h *histogram.Histogram
				ts, h = it.AtHistogram(nil)
				v = h.Sum
			case chunkenc.ValFloatHistogram:
				var fh *histogram.FloatHistogram
				ts, fh = it.AtFloatHistogram(nil)
				v = fh.Sum
			}
			if ts > t || ts <= t-lookback.Milliseconds() {
				continue
			}
			last, found = v, true
		}
		if found && !value.IsStaleNaN(last) {
			out[ss.At().Labels().String()] = last
		}
	}
	require.NoError(tb, ss.Err())
	return out
}

// walMetadata reads the metadata records of a tenant's WAL, by series labels.
func walMetadata(tb testing.TB, db *tsdb.DB) map[string]metadata.Metadata {
	tb.Helper()
	sr, err := wlog.NewSegmentsReader(filepath.Join(db.Dir(), "wal"))
	require.NoError(tb, err)
	defer func() { require.NoError(tb, sr.Close()) }()
	r := wlog.NewReader(sr)
	dec := record.NewDecoder(nil, nil)
	series := map[chunks.HeadSeriesRef]string{}
	out := map[string]metadata.Metadata{}
	for r.Next() {
		rec := r.Record()
		switch dec.Type(rec) {
		case record.Series:
			ss, err := dec.Series(rec, nil)
			require.NoError(tb, err)
			for _, s := range ss {
				series[s.Ref] = s.Labels.String()
			}
		case record.Metadata:
			ms, err := dec.Metadata(rec, nil)
			require.NoError(tb, err)
			for _, m := range ms {
				out[series[m.Ref]] = metadata.Metadata{Type: record.ToMetricType(m.Type), Unit: m.Unit, Help: m.Help}
			}
		}
	}
	require.NoError(tb, r.Err())
	return out
}

// ex is an exemplar as stored, with its labels as a string.
type ex struct {
	Labels string
	Value  float64
	Ts     int64
}

// queryExemplars returns every exemplar of a TSDB, by series labels.
func queryExemplars(tb testing.TB, db *tsdb.DB) map[string][]ex {
	tb.Helper()
	q, err := db.ExemplarQuerier(context.Background())
	require.NoError(tb, err)
	res, err := q.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+")})
	require.NoError(tb, err)
	out := map[string][]ex{}
	for _, r := range res {
		for _, e := range r.Exemplars {
			require.True(tb, e.HasTs)
			out[r.SeriesLabels.String()] = append(out[r.SeriesLabels.String()], ex{Labels: e.Labels.String(), Value: e.Value, Ts: e.Ts})
		}
	}
	return out
}

// Request building.

func lbls(pairs ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, prompb.Label{Name: pairs[i], Value: pairs[i+1]})
	}
	return out
}

func encodeV1(tb testing.TB, req *prompb.WriteRequest) []byte {
	tb.Helper()
	b, err := req.Marshal()
	require.NoError(tb, err)
	return snappy.Encode(nil, b)
}

func encodeV2(tb testing.TB, req *writev2.Request) []byte {
	tb.Helper()
	b, err := req.Marshal()
	require.NoError(tb, err)
	return snappy.Encode(nil, b)
}

// v2Builder builds Remote-Write 2.0 requests with a symbol table.
type v2Builder struct {
	st  writev2.SymbolsTable
	req writev2.Request
}

func newV2Builder() *v2Builder { return &v2Builder{st: writev2.NewSymbolTable()} }

func (b *v2Builder) refs(pairs ...string) []uint32 {
	out := make([]uint32, 0, len(pairs))
	for _, s := range pairs {
		out = append(out, b.st.Symbolize(s))
	}
	return out
}

func (b *v2Builder) meta(typ writev2.Metadata_MetricType, help, unit string) writev2.Metadata {
	return writev2.Metadata{Type: typ, HelpRef: b.st.Symbolize(help), UnitRef: b.st.Symbolize(unit)}
}

func (b *v2Builder) add(ts writev2.TimeSeries) *v2Builder {
	b.req.Timeseries = append(b.req.Timeseries, ts)
	return b
}

func (b *v2Builder) build() *writev2.Request {
	b.req.Symbols = b.st.Symbols()
	return &b.req
}

// post sends body to h and returns the recorded response.
func post(h http.Handler, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	r.Header.Set("Content-Encoding", "snappy")
	r.Header.Set("Content-Type", "application/x-protobuf")
	r.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for k, v := range hdr {
		if v == "" {
			r.Header.Del(k)
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// v2Headers are the request headers of a Remote-Write 2.0 sender.
var v2Headers = map[string]string{
	"Content-Type":                      ContentTypeV2,
	"X-Prometheus-Remote-Write-Version": "2.0.0",
}

func withHeader(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// written returns the Remote-Write 2.0 written headers of a response.
func written(w *httptest.ResponseRecorder) [3]string {
	return [3]string{
		w.Header().Get(HeaderSamplesWritten),
		w.Header().Get(HeaderHistogramsWritten),
		w.Header().Get(HeaderExemplarsWritten),
	}
}

// faultyAppender wraps a real appender and fails on demand.
type faultyAppender struct {
	storage.AppenderV2
	appendErr error // returned by every Append after appendAfter successful ones
	after     int
	commitErr error
}

func (a *faultyAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, o storage.AOptions) (storage.SeriesRef, error) {
	if a.appendErr != nil {
		if a.after == 0 {
			return 0, a.appendErr
		}
		a.after--
	}
	return a.AppenderV2.Append(ref, ls, st, t, v, h, fh, o)
}

func (a *faultyAppender) Commit() error {
	if a.commitErr != nil {
		return errors.Join(a.commitErr, a.AppenderV2.Rollback())
	}
	return a.AppenderV2.Commit()
}

// testHistogram returns a valid integer histogram with some buckets.
func testHistogram(i int) *histogram.Histogram {
	return &histogram.Histogram{
		Count:           uint64(12 + i*9),
		ZeroCount:       uint64(2 + i),
		ZeroThreshold:   0.001,
		Sum:             18.4 * float64(i+1),
		Schema:          1,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveBuckets: []int64{int64(i + 1), 1, -1, 0},
		NegativeSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		NegativeBuckets: []int64{int64(i + 1), 1, -1, 0},
	}
}

func mustBody(tb testing.TB, r io.Reader) string {
	tb.Helper()
	b, err := io.ReadAll(r)
	require.NoError(tb, err)
	return strings.TrimSpace(string(b))
}
