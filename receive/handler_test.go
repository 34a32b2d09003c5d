package receive

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// TestBadRequests sends requests that must be refused, in whole or for the bad
// series they carry, and checks the status, the message, and that stored data
// did not change.
func TestBadRequests(t *testing.T) {
	now := time.Now().UnixMilli()
	v1 := func(ts ...prompb.TimeSeries) []byte { return encodeV1(t, &prompb.WriteRequest{Timeseries: ts}) }
	floatSeries := func(pairs ...string) prompb.TimeSeries {
		return prompb.TimeSeries{Labels: lbls(pairs...), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}
	}
	v2 := func(symbols []string, ts ...writev2.TimeSeries) []byte {
		return encodeV2(t, &writev2.Request{Symbols: symbols, Timeseries: ts})
	}
	v2Series := func(refs ...uint32) writev2.TimeSeries {
		return writev2.TimeSeries{LabelsRefs: refs, Samples: []writev2.Sample{{Value: 1, Timestamp: now}}}
	}
	badHistogram := prompb.FromIntHistogram(now, &histogram.Histogram{Count: 5, Schema: 0, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}})
	smallLimits := Options{MaxCompressedBytes: 1024, MaxDecompressedBytes: 4096}
	symbols := []string{"", "__name__", "x", "job", "a"}

	for _, tc := range []struct {
		name     string
		opts     Options
		method   string
		body     []byte
		hdr      map[string]string
		chunked  bool // send without Content-Length
		wantCode int
		wantMsg  string
		// wantWritten are the Remote-Write 2.0 headers; nil means none are sent.
		wantWritten []string
	}{
		{name: "GET", method: http.MethodGet, wantCode: http.StatusMethodNotAllowed, wantMsg: "POST"},
		{name: "bad snappy", body: []byte("this is not snappy"), wantCode: http.StatusBadRequest, wantMsg: "decode snappy"},
		{name: "bad protobuf", body: snappy.Encode(nil, []byte{0x0a, 0xff, 0xff, 0x01}), wantCode: http.StatusBadRequest, wantMsg: "decode remote write 1.0 request"},
		{name: "bad protobuf rw2", body: snappy.Encode(nil, []byte{0x2a, 0x05, 0x0a}), hdr: v2Headers, wantCode: http.StatusBadRequest, wantMsg: "decode remote write 2.0 request", wantWritten: []string{"0", "0", "0"}},
		{name: "unsorted labels", body: v1(floatSeries("__name__", "x", "job", "a", "instance", "b")), wantCode: http.StatusBadRequest, wantMsg: `1 of 1 samples rejected (1 series), first: {__name__="x", job="a", instance="b"}: invalid labels: labels not sorted by name: "instance" after "job"`},
		{name: "duplicate labels", body: v1(floatSeries("__name__", "x", "job", "a", "job", "b")), wantCode: http.StatusBadRequest, wantMsg: `invalid labels: duplicate label name "job"`},
		{name: "empty metric name", body: v1(floatSeries("__name__", "", "job", "a")), wantCode: http.StatusBadRequest, wantMsg: "missing metric name"},
		{name: "no metric name", body: v1(floatSeries("job", "a")), wantCode: http.StatusBadRequest, wantMsg: "missing metric name"},
		{name: "empty label name", body: v1(floatSeries("", "v", "__name__", "x")), wantCode: http.StatusBadRequest, wantMsg: "empty label name"},
		{name: "empty label set", body: v1(floatSeries()), wantCode: http.StatusBadRequest, wantMsg: "empty label set"},
		{name: "invalid utf-8", body: v1(floatSeries("__name__", "x", "job", "a\xff")), wantCode: http.StatusBadRequest, wantMsg: `value of label "job" is not valid UTF-8`},
		{name: "invalid histogram", body: v1(prompb.TimeSeries{Labels: lbls("__name__", "h"), Histograms: []prompb.Histogram{badHistogram}}), wantCode: http.StatusBadRequest, wantMsg: "observations found in buckets"},
		{name: "too far in the future", opts: Options{MaxFutureSkew: 10 * time.Minute}, body: v1(prompb.TimeSeries{Labels: lbls("__name__", "x"), Samples: []prompb.Sample{{Value: 1, Timestamp: now + time.Hour.Milliseconds()}}}), wantCode: http.StatusBadRequest, wantMsg: "too far in the future"},
		{name: "too large by content length", opts: smallLimits, body: randomBytes(t, 2048), wantCode: http.StatusRequestEntityTooLarge, wantMsg: "exceeds the limit of 1024 bytes"},
		{name: "too large chunked", opts: smallLimits, body: randomBytes(t, 2048), chunked: true, wantCode: http.StatusRequestEntityTooLarge, wantMsg: "exceeds the limit of 1024 bytes"},
		{name: "too large decompressed", opts: smallLimits, body: snappy.Encode(nil, make([]byte, 8192)), wantCode: http.StatusRequestEntityTooLarge, wantMsg: "decompressed request of 8192 bytes exceeds the limit of 4096 bytes"},
		{name: "too large decompressed rw2", opts: smallLimits, body: snappy.Encode(nil, make([]byte, 8192)), hdr: v2Headers, wantCode: http.StatusRequestEntityTooLarge, wantMsg: "decompressed", wantWritten: []string{"0", "0", "0"}},
		{name: "unknown content type", body: v1(floatSeries("__name__", "x")), hdr: map[string]string{"Content-Type": "application/json"}, wantCode: http.StatusUnsupportedMediaType, wantMsg: `unsupported Content-Type "application/json": supported are "application/x-protobuf;proto=prometheus.WriteRequest"`},
		{name: "unknown proto", body: v1(floatSeries("__name__", "x")), hdr: map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v3.Request"}, wantCode: http.StatusUnsupportedMediaType, wantMsg: `unsupported proto "io.prometheus.write.v3.Request"`},
		{name: "unknown encoding", body: v1(floatSeries("__name__", "x")), hdr: map[string]string{"Content-Encoding": "gzip"}, wantCode: http.StatusUnsupportedMediaType, wantMsg: `unsupported Content-Encoding "gzip"`},
		{name: "tenant ../x", body: v1(floatSeries("__name__", "x")), hdr: map[string]string{DefaultTenantHeader: "../x"}, wantCode: http.StatusBadRequest, wantMsg: `invalid tenant: tenant name "../x" contains ".."`},
		{name: "tenant a/b", body: v1(floatSeries("__name__", "x")), hdr: map[string]string{DefaultTenantHeader: "a/b"}, wantCode: http.StatusBadRequest, wantMsg: `contains "/"`},
		{name: "tenant ..", body: v1(floatSeries("__name__", "x")), hdr: map[string]string{DefaultTenantHeader: ".."}, wantCode: http.StatusBadRequest, wantMsg: `contains ".."`},
		{name: "tenant from custom header", opts: Options{TenantHeader: "X-Scope-OrgID"}, body: v1(floatSeries("__name__", "x")), hdr: map[string]string{"X-Scope-OrgID": "a\\b"}, wantCode: http.StatusBadRequest, wantMsg: `contains "\\"`},
		{name: "rw2 label ref out of range", body: v2(symbols, v2Series(1, 2, 3, 9)), hdr: v2Headers, wantCode: http.StatusBadRequest, wantMsg: "invalid symbol reference: label value reference 9 out of range (5 symbols)", wantWritten: []string{"0", "0", "0"}},
		{name: "rw2 odd label refs", body: v2(symbols, v2Series(1, 2, 3)), hdr: v2Headers, wantCode: http.StatusBadRequest, wantMsg: "odd number (3) of label references", wantWritten: []string{"0", "0", "0"}},
		{name: "rw2 no symbols", body: v2(nil, v2Series(1, 2)), hdr: v2Headers, wantCode: http.StatusBadRequest, wantMsg: "out of range (0 symbols)", wantWritten: []string{"0", "0", "0"}},
		{name: "rw2 first symbol not empty", body: v2([]string{"__name__", "x"}, v2Series(0, 1)), hdr: v2Headers, wantCode: http.StatusBadRequest, wantMsg: "first symbol is not the empty string", wantWritten: []string{"0", "0", "0"}},
		{name: "rw2 help ref out of range", body: v2(symbols, writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: now}}, Metadata: writev2.Metadata{HelpRef: 77}}), hdr: v2Headers, wantCode: http.StatusBadRequest, wantMsg: "help reference 77 out of range", wantWritten: []string{"0", "0", "0"}},
		{name: "rw2 exemplar ref out of range", body: v2(symbols, writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: now}}, Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{3, 100}, Value: 1, Timestamp: now}}}), hdr: v2Headers, wantCode: http.StatusBadRequest, wantMsg: "exemplar label value reference 100 out of range", wantWritten: []string{"0", "0", "0"}},
		{name: "rw2 invalid utf-8", body: v2([]string{"", "__name__", "x\xff"}, v2Series(1, 2)), hdr: v2Headers, wantCode: http.StatusBadRequest, wantMsg: `value of label "__name__" is not valid UTF-8`, wantWritten: []string{"0", "0", "0"}},
		{name: "rw2 unsorted labels", body: v2(symbols, v2Series(3, 4, 1, 2)), hdr: v2Headers, wantCode: http.StatusBadRequest, wantMsg: `{job="a", __name__="x"}: invalid labels: labels not sorted`, wantWritten: []string{"0", "0", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newTestStorage(t, nil)
			h := NewHandler(tc.opts, store, nil, nil)
			seed := post(h, encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
				Labels:  lbls("__name__", "seed", "job", "a"),
				Samples: []prompb.Sample{{Value: 1, Timestamp: now - 60_000}},
			}}}), nil)
			require.Equal(t, http.StatusNoContent, seed.Code, seed.Body.String())
			before := store.dump(DefaultTenant)
			require.Len(t, before, 1)

			var w *httptest.ResponseRecorder
			switch {
			case tc.method != "":
				w = httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(tc.method, Path, nil))
			case tc.chunked:
				r := httptest.NewRequest(http.MethodPost, Path, io.MultiReader(bytes.NewReader(tc.body)))
				r.ContentLength = -1
				w = httptest.NewRecorder()
				h.ServeHTTP(w, r)
			default:
				w = post(h, tc.body, tc.hdr)
			}

			require.Equal(t, tc.wantCode, w.Code, w.Body.String())
			require.Contains(t, w.Body.String(), tc.wantMsg)
			if tc.wantWritten == nil {
				require.Empty(t, w.Header().Get(HeaderSamplesWritten))
			} else {
				require.Equal(t, [3]string(tc.wantWritten), written(w))
			}
			require.Equal(t, before, store.dump(DefaultTenant), "stored data changed")
			require.Equal(t, []string{DefaultTenant}, store.tenants(), "a tenant storage was opened")
		})
	}
}

// TestNegotiation checks which content types are taken for which version.
func TestNegotiation(t *testing.T) {
	for _, tc := range []struct {
		contentType, encoding string
		want                  protocol
		wantErr               string
	}{
		{contentType: "", want: protoV1},
		{contentType: "application/x-protobuf", want: protoV1},
		{contentType: "application/x-protobuf;proto=prometheus.WriteRequest", want: protoV1},
		{contentType: "application/x-protobuf; proto=prometheus.WriteRequest", want: protoV1},
		{contentType: "Application/X-Protobuf", want: protoV1},
		{contentType: "application/x-protobuf;proto=io.prometheus.write.v2.Request", want: protoV2},
		{contentType: `application/x-protobuf; proto="io.prometheus.write.v2.Request"`, want: protoV2},
		{contentType: "application/x-protobuf", encoding: "SNAPPY", want: protoV1},
		{contentType: "application/x-protobuf;proto=prometheus.ReadRequest", wantErr: `unsupported proto "prometheus.ReadRequest"`},
		{contentType: "text/plain", wantErr: `unsupported Content-Type "text/plain"`},
		{contentType: "application/x-protobuf;;;", wantErr: "unsupported Content-Type"},
		{contentType: "application/x-protobuf", encoding: "zstd", wantErr: `unsupported Content-Encoding "zstd": only snappy`},
	} {
		t.Run(tc.contentType+" "+tc.encoding, func(t *testing.T) {
			hdr := http.Header{}
			if tc.contentType != "" {
				hdr.Set("Content-Type", tc.contentType)
			}
			if tc.encoding != "" {
				hdr.Set("Content-Encoding", tc.encoding)
			}
			got, err := negotiate(hdr)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestTransientErrors checks that storage failures get a 503 and leave nothing
// written, so that the sender's retry starts clean.
func TestTransientErrors(t *testing.T) {
	now := time.Now().UnixMilli()
	b := newV2Builder()
	for i := range 3 {
		b.add(writev2.TimeSeries{
			LabelsRefs: b.refs("__name__", "up", "instance", string(rune('a'+i))),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: now}},
		})
	}
	body := encodeV2(t, b.build())
	errBroken := errors.New("disk on fire")

	for _, tc := range []struct {
		name  string
		setup func(*testStorage)
		want  string
	}{
		{name: "tenant appender", setup: func(s *testStorage) { s.err = errBroken }, want: `storage of tenant "default-tenant" unavailable: disk on fire`},
		{name: "unknown append error", setup: func(s *testStorage) {
			s.wrap = func(a storage.AppenderV2) storage.AppenderV2 {
				return &faultyAppender{AppenderV2: a, appendErr: errBroken, after: 2}
			}
		}, want: `append to series {__name__="up", instance="c"}: disk on fire`},
		{name: "commit", setup: func(s *testStorage) {
			s.wrap = func(a storage.AppenderV2) storage.AppenderV2 {
				return &faultyAppender{AppenderV2: a, commitErr: errBroken}
			}
		}, want: "commit: disk on fire"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newTestStorage(t, nil)
			tc.setup(store)
			reg := prometheus.NewRegistry()
			h := NewHandler(Options{}, store, reg, nil)
			w := post(h, body, v2Headers)
			require.Equal(t, http.StatusServiceUnavailable, w.Code)
			require.Contains(t, w.Body.String(), tc.want)
			require.Equal(t, [3]string{"0", "0", "0"}, written(w))
			require.Empty(t, store.dump(DefaultTenant))
			require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.requests.WithLabelValues("503", "rw2")))
			require.Equal(t, 0.0, testutil.ToFloat64(h.metrics.samples))

			// Once storage is healthy again, the retry writes everything.
			store.err, store.wrap = nil, nil
			w = post(h, body, v2Headers)
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			require.Equal(t, [3]string{"3", "0", "0"}, written(w))
			require.Equal(t, 3, sampleCount(store.dump(DefaultTenant)))
		})
	}
}

// TestEmptyRequests checks that requests without series succeed without
// opening tenant storage.
func TestEmptyRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		hdr  map[string]string
	}{
		{name: "no body"},
		{name: "rw1", body: encodeV1(t, &prompb.WriteRequest{})},
		{name: "rw1 metadata only", body: encodeV1(t, &prompb.WriteRequest{Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "x", Help: "h"}}})},
		{name: "rw2", body: encodeV2(t, &writev2.Request{}), hdr: v2Headers},
		{name: "rw2 symbols only", body: encodeV2(t, &writev2.Request{Symbols: []string{"", "a"}}), hdr: v2Headers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newTestStorage(t, nil)
			store.err = errors.New("must not be called")
			w := post(NewHandler(Options{}, store, nil, nil), tc.body, tc.hdr)
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			if tc.hdr != nil {
				require.Equal(t, [3]string{"0", "0", "0"}, written(w))
			}
			require.Empty(t, store.tenants())
		})
	}
}

func TestReadBody(t *testing.T) {
	payload := randomBytes(t, 100_000)
	for _, tc := range []struct {
		name          string
		buf           []byte
		contentLength int64
	}{
		{name: "unknown length, no buffer", contentLength: -1},
		{name: "known length, no buffer", contentLength: int64(len(payload))},
		{name: "small pooled buffer", buf: make([]byte, 10, 100), contentLength: -1},
		{name: "large pooled buffer", buf: make([]byte, 0, 1<<20), contentLength: int64(len(payload))},
		{name: "understated length", contentLength: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(iotestHalfReader{bytes.NewReader(payload)}, tc.buf, tc.contentLength)
			require.NoError(t, err)
			require.Equal(t, payload, got)
		})
	}
}

// iotestHalfReader returns at most half of what is asked per Read.
type iotestHalfReader struct{ r io.Reader }

func (h iotestHalfReader) Read(p []byte) (int, error) {
	return h.r.Read(p[:(len(p)+1)/2])
}

func TestFormatSeries(t *testing.T) {
	require.Equal(t, `{__name__="x", "my.label"="a\"b", "0"="\xff"}`, formatSeries([]wireLabel{{"__name__", "x"}, {"my.label", `a"b`}, {"0", "\xff"}}))
	long := formatSeries([]wireLabel{{"a", strings.Repeat("x", 2000)}})
	require.Len(t, long, maxSeriesString+4)
	require.True(t, strings.HasSuffix(long, "...}"))
	require.Equal(t, "{}", formatSeries(nil))
}
