package queryfrontend

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"math"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"
)

// floatBits returns the bits of every float point of e, so that NaNs
// compare exactly.
func floatBits(e Extent) []uint64 {
	var bits []uint64
	for _, s := range e.Response.Series {
		for _, p := range s.Points {
			bits = append(bits, math.Float64bits(p.V))
		}
	}
	return bits
}

func sampleExtent() Extent {
	return Extent{Start: -30_000, End: 90_000, Response: Response{Series: []Series{
		// Sorted by labels.Compare: "empty" sorts before "job".
		{Labels: labels.EmptyLabels(), Points: nil},
		{Labels: labels.FromStrings("__name__", "up", "job", "b", "empty", ""), Points: []Point{fp(0, math.Copysign(0, -1)), fp(90_000, 1e300)}},
		{Labels: labels.FromStrings("__name__", "up", "job", "a"), Points: []Point{
			fp(-30_000, math.NaN()),
			fp(0, math.Float64frombits(value.StaleNaN)),
			fp(30_000, math.Inf(1)),
			fp(60_000, math.Inf(-1)),
			{T: 90_000, H: json.RawMessage(`{"count":"2","sum":"0.5","buckets":[[0,"0","1","2"]]}`)},
		}},
	}}}
}

func TestExtentRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Extent
	}{
		{name: "empty", in: Extent{Start: 0, End: 0}},
		{name: "special values", in: sampleExtent()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeExtent(EncodeExtent(tc.in))
			require.NoError(t, err)
			requireSameExtent(t, tc.in, got)
		})
	}
	// The stale marker must survive as itself, not as some other NaN.
	got, err := DecodeExtent(EncodeExtent(sampleExtent()))
	require.NoError(t, err)
	require.True(t, value.IsStaleNaN(got.Response.Series[2].Points[1].V))
	require.False(t, value.IsStaleNaN(got.Response.Series[2].Points[0].V))
}

// requireSameExtent compares extents exactly: float bits rather than
// values, so that NaN equals itself and -0 differs from 0.
func requireSameExtent(t testing.TB, want, got Extent) {
	t.Helper()
	require.Equal(t, floatBits(want), floatBits(got))
	require.Equal(t, want.Start, got.Start)
	require.Equal(t, want.End, got.End)
	require.Len(t, got.Response.Series, len(want.Response.Series))
	for i, ws := range want.Response.Series {
		gs := got.Response.Series[i]
		require.True(t, labels.Equal(ws.Labels, gs.Labels), "series %d: %s != %s", i, ws.Labels, gs.Labels)
		require.Len(t, gs.Points, len(ws.Points))
		for j, wp := range ws.Points {
			require.Equal(t, wp.T, gs.Points[j].T)
			require.Equal(t, string(wp.H), string(gs.Points[j].H))
			require.Equal(t, len(wp.H) == 0, gs.Points[j].H == nil)
		}
	}
}

func TestDecodeExtentRejects(t *testing.T) {
	good := EncodeExtent(sampleExtent())
	flipped := append([]byte(nil), good...)
	flipped[10] ^= 1
	outside := EncodeExtent(Extent{Start: 0, End: 10, Response: Response{Series: []Series{
		{Labels: labels.FromStrings("a", "b"), Points: []Point{fp(11, 1)}},
	}}})
	unsorted := EncodeExtent(Extent{Start: 0, End: 10, Response: Response{Series: []Series{
		{Labels: labels.FromStrings("a", "c"), Points: []Point{fp(1, 1)}},
		{Labels: labels.FromStrings("a", "b"), Points: []Point{fp(1, 1)}},
	}}})
	repeated := EncodeExtent(Extent{Start: 0, End: 10, Response: Response{Series: []Series{
		{Labels: labels.FromStrings("a", "b"), Points: []Point{fp(1, 1), fp(1, 2)}},
	}}})
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{name: "nil", in: nil},
		{name: "truncated", in: good[:len(good)-1]},
		{name: "bit flip", in: flipped},
		{name: "point outside extent", in: outside},
		{name: "series out of order", in: unsorted},
		{name: "repeated time", in: repeated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeExtent(tc.in)
			require.ErrorIs(t, err, errCorrupt)
		})
	}
}

func FuzzDecodeExtent(f *testing.F) {
	for _, e := range []Extent{sampleExtent(), {}, {Start: math.MinInt64, End: math.MaxInt64}} {
		b := EncodeExtent(e)
		f.Add(b)
		f.Add(b[:len(b)-4]) // valid once the checksum is appended below
	}
	f.Add([]byte{})
	f.Add([]byte{extentVersion, 0, 0, 0, 0, 0, 0, 0})
	check := func(t *testing.T, b []byte) {
		e, err := DecodeExtent(b)
		if err != nil {
			return
		}
		// Varints have more than one encoding, so compare decoded values.
		again, err := DecodeExtent(EncodeExtent(e))
		require.NoError(t, err)
		requireSameExtent(t, e, again)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		// Random bytes almost never carry a matching checksum; append one so
		// that the fuzzer reaches the decoder behind it.
		check(t, binary.LittleEndian.AppendUint32(slices.Clone(b), crc32.Checksum(b, castagnoli)))
	})
}
