package hashring

import (
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// layout builds the bytes Hash is specified to hash, the slow and obvious way.
func layout(tenant string, kv ...string) []byte {
	var b []byte
	b = append(b, tenant...)
	b = append(b, 0xff)
	for _, s := range kv {
		b = append(b, s...)
		b = append(b, 0xff)
	}
	return b
}

func TestHashKnownAnswers(t *testing.T) {
	long := strings.Repeat("v", 1500)
	mid := strings.Repeat("m", 600)
	for _, tc := range []struct {
		name   string
		tenant string
		kv     []string // sorted by name
		pinned uint64   // 0: compare with the layout only
	}{
		{name: "no labels", tenant: "t"},
		{name: "empty tenant", tenant: "", kv: []string{"__name__", "up"}},
		{
			name: "typical", tenant: "team-a", kv: []string{"__name__", "up", "instance", "10.0.0.1:9100", "job", "node"},
			// Pinned so that a change of layout, which would move every
			// series of every ring, cannot pass unnoticed.
			pinned: 0x67c79c3215a3c6f8,
		},
		{name: "one label over 1 KiB", tenant: "team-a", kv: []string{"__name__", "up", "big", long}},
		{name: "crosses 1 KiB midway", tenant: "team-a", kv: []string{"a", mid, "b", mid, "c", "x", "d", mid}},
		{name: "long tenant", tenant: strings.Repeat("t", 1100), kv: []string{"__name__", "up", "job", "node"}},
		{name: "label exactly fills the buffer", tenant: "t", kv: []string{"n", strings.Repeat("x", 1024-2-1-2)}},
		{name: "label one byte over the buffer", tenant: "t", kv: []string{"n", strings.Repeat("x", 1024-2-1-1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Hash(tc.tenant, labels.FromStrings(tc.kv...))
			require.Equal(t, xxhash.Sum64(layout(tc.tenant, tc.kv...)), got)
			if tc.pinned != 0 {
				require.Equal(t, tc.pinned, got, "got %#x", got)
			}
		})
	}
}

func TestXXHashSpec(t *testing.T) {
	// The XXH64 test vector for empty input with seed 0: the library is the
	// one the layout is specified over.
	require.Equal(t, uint64(0xef46db3751d8e999), xxhash.Sum64(nil))
}

func TestHashProperties(t *testing.T) {
	a := labels.FromStrings("__name__", "up", "job", "node")
	require.Equal(t, Hash("t", a), Hash("t", labels.FromStrings("__name__", "up", "job", "node")), "same labels, same hash")
	require.Equal(t, Hash("t", a), Hash("t", labels.FromStrings("job", "node", "__name__", "up")), "FromStrings sorts")
	require.NotEqual(t, Hash("t1", a), Hash("t2", a), "the tenant is part of the key")
	require.NotEqual(t, Hash("", a), Hash("t", a))
	// The separator keeps boundaries: moving a byte from tenant to name or
	// from name to value changes the hash.
	require.NotEqual(t, Hash("ab", labels.FromStrings("c", "d")), Hash("a", labels.FromStrings("bc", "d")))
	require.NotEqual(t, Hash("t", labels.FromStrings("ab", "c")), Hash("t", labels.FromStrings("a", "bc")))
}

func TestHashAllocs(t *testing.T) {
	lset := labels.FromStrings(
		"__name__", "http_requests_total", "code", "200", "handler", "/api/v1/query",
		"instance", "10.1.2.3:9090", "job", "prometheus", "method", "GET",
		"namespace", "monitoring", "pod", "prometheus-k8s-0",
	)
	require.Zero(t, testing.AllocsPerRun(100, func() { Hash("team-a", lset) }))
}
