package sidecar

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// flushBuffer is a bytes.Buffer that is an http.Flusher, for
// remote.NewChunkedWriter.
type flushBuffer struct{ bytes.Buffer }

func (*flushBuffer) Flush() {}

// encodeFrames encodes frames as Prometheus streams them.
func encodeFrames(t testing.TB, frames ...*prompb.ChunkedReadResponse) []byte {
	t.Helper()
	var buf flushBuffer
	w := remote.NewChunkedWriter(&buf, &buf)
	for _, f := range frames {
		b, err := f.Marshal()
		require.NoError(t, err)
		_, err = w.Write(b)
		require.NoError(t, err)
	}
	return buf.Bytes()
}

func xorChunk(t testing.TB, ts ...int64) prompb.Chunk {
	t.Helper()
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	require.NoError(t, err)
	for _, v := range ts {
		app.Append(0, v, float64(v))
	}
	return prompb.Chunk{MinTimeMs: ts[0], MaxTimeMs: ts[len(ts)-1], Type: prompb.Chunk_XOR, Data: c.Bytes()}
}

func series(chks []prompb.Chunk, lset ...string) *prompb.ChunkedSeries {
	s := &prompb.ChunkedSeries{Chunks: chks}
	for i := 0; i+1 < len(lset); i += 2 {
		s.Labels = append(s.Labels, prompb.Label{Name: lset[i], Value: lset[i+1]})
	}
	return s
}

func TestDecodeChunkedResponse(t *testing.T) {
	a := func(ts ...int64) []prompb.Chunk { return []prompb.Chunk{xorChunk(t, ts...)} }
	cases := []struct {
		name    string
		body    []byte
		want    []string // series with their chunks' min times
		wantErr bool
	}{
		{name: "empty", body: nil},
		{
			name: "series split over frames and out of order",
			body: encodeFrames(t,
				&prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
					series(a(10, 20), "__name__", "up", "job", "b"),
					series(a(1, 2), "job", "a", "__name__", "up"), // unsorted labels
				}},
				&prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
					series(a(0, 5), "__name__", "up", "job", "a"),
				}},
			),
			want: []string{`{__name__="up", job="a"} 0 1`, `{__name__="up", job="b"} 10`},
		},
		{
			name:    "other query",
			body:    encodeFrames(t, &prompb.ChunkedReadResponse{QueryIndex: 1, ChunkedSeries: []*prompb.ChunkedSeries{series(a(1), "a", "b")}}),
			wantErr: true,
		},
		{name: "no labels", body: encodeFrames(t, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series(a(1))}}), wantErr: true},
		{name: "empty value", body: encodeFrames(t, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series(a(1), "a", "")}}), wantErr: true},
		{name: "duplicate name", body: encodeFrames(t, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series(a(1), "a", "1", "a", "2")}}), wantErr: true},
		{
			name:    "unknown encoding",
			body:    encodeFrames(t, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series([]prompb.Chunk{{Type: 9, Data: []byte{0, 1}}}, "a", "b")}}),
			wantErr: true,
		},
		{
			name:    "inverted time range",
			body:    encodeFrames(t, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series([]prompb.Chunk{{MinTimeMs: 2, MaxTimeMs: 1, Type: prompb.Chunk_XOR, Data: []byte{0, 1}}}, "a", "b")}}),
			wantErr: true,
		},
		{
			name:    "no data",
			body:    encodeFrames(t, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series([]prompb.Chunk{{Type: prompb.Chunk_XOR}}, "a", "b")}}),
			wantErr: true,
		},
		{name: "truncated", body: encodeFrames(t, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series(a(1), "a", "b")}})[:10], wantErr: true},
		{name: "bad checksum", body: func() []byte {
			b := encodeFrames(t, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series(a(1), "a", "b")}})
			b[len(b)-1] ^= 0xff
			return b
		}(), wantErr: true},
		{name: "cut after a length", body: []byte{5}, wantErr: true},
		{name: "cut in a checksum", body: []byte{5, 1, 2}, wantErr: true},
		{name: "too large", body: []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0}, wantErr: true},
		{name: "an error text after a frame", body: append(encodeFrames(t, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series(a(1), "a", "b")}}), "query timed out\n"...), wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeChunkedResponse(bytes.NewReader(c.body))
			if c.wantErr {
				require.ErrorIs(t, err, errBadFrame)
				return
			}
			require.NoError(t, err)
			var desc []string
			for _, s := range got {
				d := s.lset.String()
				for _, m := range s.chks {
					d += " " + strconv.FormatInt(m.MinTime, 10)
				}
				desc = append(desc, d)
			}
			require.Equal(t, c.want, desc)
		})
	}
}

// FuzzDecodeChunkedResponse feeds arbitrary bytes to the decoder of streamed
// remote-read responses, which come from the network: it must never panic,
// every error must be errBadFrame, and what it accepts must be sorted,
// de-duplicated series with valid labels and chunks sorted by min time.
func FuzzDecodeChunkedResponse(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeFrames(f, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
		series([]prompb.Chunk{xorChunk(f, 1, 2, 3)}, "__name__", "up", "job", "a"),
		series([]prompb.Chunk{xorChunk(f, 5), xorChunk(f, 4)}, "__name__", "up", "job", "b"),
	}}))
	f.Add(encodeFrames(f,
		&prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series([]prompb.Chunk{xorChunk(f, 1)}, "a", "1")}},
		&prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{series([]prompb.Chunk{xorChunk(f, 2)}, "a", "1")}},
	))
	f.Add(encodeFrames(f, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
		series([]prompb.Chunk{{MinTimeMs: 1, MaxTimeMs: 1, Type: prompb.Chunk_HISTOGRAM, Data: []byte{0, 0, 1}}}, "h", "1"),
	}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeChunkedResponse(bytes.NewReader(body))
		if err != nil {
			if !errors.Is(err, errBadFrame) {
				t.Fatalf("error %v is not errBadFrame", err)
			}
			return
		}
		for i, s := range got {
			if s.lset.IsEmpty() {
				t.Fatal("series without labels")
			}
			if i > 0 && labels.Compare(got[i-1].lset, s.lset) >= 0 {
				t.Fatalf("series %s after %s", s.lset, got[i-1].lset)
			}
			for j, m := range s.chks {
				if m.MinTime > m.MaxTime || m.Chunk == nil {
					t.Fatalf("series %s: bad chunk %+v", s.lset, m)
				}
				if j > 0 && s.chks[j-1].MinTime > m.MinTime {
					t.Fatalf("series %s: chunks out of order", s.lset)
				}
			}
		}
	})
}
