package loadgen

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// send returns the decoded series of batch b in round r, compressed as senders
// compress them.
func send(t testing.TB, w *Workload, b *Batch, r int) []decodedSeries {
	t.Helper()
	return decodeRequest(t, w.cfg.Protocol, s2.EncodeSnappy(nil, b.Next(r)))
}

func TestBodiesDecode(t *testing.T) {
	for _, proto := range []Protocol{ProtocolRW1, ProtocolRW2} {
		t.Run(string(proto), func(t *testing.T) {
			const series, rounds = 450, 6
			w := testWorkload(t, WorkloadConfig{Series: series, BatchSize: 100, Tenants: 2, Protocol: proto})
			// Two tenants of 225 series: batches of 100, 100, 25 each.
			var sizes []int
			var tenants []string
			for _, b := range w.Batches() {
				sizes = append(sizes, b.Len())
				tenants = append(tenants, b.Tenant())
			}
			require.Equal(t, []int{100, 100, 25, 100, 100, 25}, sizes)
			require.Equal(t, []string{"tenant-0", "tenant-0", "tenant-0", "tenant-1", "tenant-1", "tenant-1"}, tenants)

			seen := map[string]bool{}
			names := map[string]bool{}
			for r := range rounds {
				for _, b := range w.Batches() {
					got := send(t, w, b, r)
					require.Len(t, got, b.Len())
					for i, s := range got {
						requireValidLabels(t, s.labels)
						require.GreaterOrEqual(t, len(s.labels), 6)
						require.LessOrEqual(t, len(s.labels), 9)
						for _, n := range []string{"cluster", "env", "instance", "job", "region"} {
							require.NotEmpty(t, labelValue(s.labels, n), "label %s", n)
						}
						require.Equal(t, testStart.UnixMilli()+int64(r)*15000, s.t, "timestamp of round %d", r)
						require.False(t, math.IsNaN(s.v) || math.IsInf(s.v, 0))
						// Slot first+i runs template (first+i) mod 100.
						first, _ := b.Slots()
						tmpl := w.tmpls[(first+i)%w.SeriesPerHost()]
						require.Equal(t, tmpl.family.name, s.labels[0].value)
						if proto == ProtocolRW2 {
							want := writev2.Metadata_METRIC_TYPE_GAUGE
							if strings.HasSuffix(tmpl.family.name, "_total") || strings.HasPrefix(tmpl.family.name, "node_vmstat_") {
								want = writev2.Metadata_METRIC_TYPE_COUNTER
							}
							require.Equal(t, want, s.metaType, tmpl.family.name)
							require.Equal(t, tmpl.family.help, s.help)
						}
						if r == 0 {
							require.False(t, seen[s.key()], "duplicate series %v", s.labels)
						} else {
							require.True(t, seen[s.key()], "series changed without churn: %v", s.labels)
						}
						seen[s.key()] = true
						names[s.labels[0].value] = true
					}
				}
			}
			require.Len(t, seen, series)
			require.Len(t, names, len(w.MetricNames()))
			for _, n := range w.MetricNames() {
				require.True(t, names[n], n)
			}
			require.Equal(t, int64(series), w.SeriesCreated())
		})
	}
}

// TestSeriesLabels pins the labels of a few series, so that a workload stays
// comparable across versions.
func TestSeriesLabels(t *testing.T) {
	w := testWorkload(t, WorkloadConfig{Series: 300, BatchSize: 300})
	got := send(t, w, w.Batches()[0], 0)
	for _, c := range []struct {
		i    int
		want string
	}{
		{0, `__name__=node_cpu_seconds_total,cluster=prod-us-east-1-000,cpu=0,env=production,instance=ip-10-0-1-241.us-east-1.compute.internal:9100,job=node-exporter,mode=idle,region=us-east-1,`},
		{58, `__name__=node_filesystem_files_free,cluster=prod-us-east-1-000,device=/dev/nvme1n1,env=production,fstype=xfs,instance=ip-10-0-1-241.us-east-1.compute.internal:9100,job=node-exporter,mountpoint=/var/lib/containerd,region=us-east-1,`},
		{77, `__name__=node_memory_Buffers_bytes,cluster=prod-us-east-1-000,env=production,instance=ip-10-0-1-241.us-east-1.compute.internal:9100,job=node-exporter,region=us-east-1,`},
		{199, `__name__=node_time_seconds,cluster=prod-us-east-1-000,env=production,instance=ip-10-9-229-166.us-east-1.compute.internal:9100,job=node-exporter,region=us-east-1,`},
	} {
		require.Equal(t, c.want, got[c.i].key(), "series %d", c.i)
	}
}

func TestRW1AndRW2CarryTheSameSamples(t *testing.T) {
	cfg := WorkloadConfig{Series: 500, BatchSize: 70, Churn: 0.2, ChurnInterval: 30 * time.Second}
	w1 := testWorkload(t, cfg)
	cfg.Protocol = ProtocolRW2
	w2 := testWorkload(t, cfg)
	for r := range 7 {
		for i, b := range w1.Batches() {
			s1, s2 := send(t, w1, b, r), send(t, w2, w2.Batches()[i], r)
			require.Len(t, s2, len(s1))
			for k := range s1 {
				require.Equal(t, s1[k].labels, s2[k].labels)
				require.Equal(t, s1[k].t, s2[k].t)
				require.Equal(t, math.Float64bits(s1[k].v), math.Float64bits(s2[k].v))
			}
		}
	}
}

func TestDeterministicBySeed(t *testing.T) {
	bodies := func(seed uint64) [][]byte {
		w := testWorkload(t, WorkloadConfig{Series: 300, BatchSize: 100, Seed: seed})
		var out [][]byte
		for r := range 3 {
			for _, b := range w.Batches() {
				out = append(out, append([]byte(nil), b.Next(r)...))
			}
		}
		return out
	}
	require.Equal(t, bodies(7), bodies(7))
	require.NotEqual(t, bodies(7), bodies(8))
}

func TestValues(t *testing.T) {
	const rounds = 60
	w := testWorkload(t, WorkloadConfig{Series: 1000, BatchSize: 250, Protocol: ProtocolRW2})
	last := map[string]float64{}
	moved := map[string]bool{}
	for r := range rounds {
		for _, b := range w.Batches() {
			for _, s := range send(t, w, b, r) {
				name := s.labels[0].value
				require.GreaterOrEqual(t, s.v, 0.0, name)
				prev, ok := last[s.key()]
				last[s.key()] = s.v
				if !ok {
					continue
				}
				if s.v != prev {
					moved[name] = true
				}
				switch {
				case s.metaType == writev2.Metadata_METRIC_TYPE_COUNTER:
					require.GreaterOrEqual(t, s.v, prev, "counter %v decreased", s.labels)
				case name == "node_time_seconds":
					require.Equal(t, float64(s.t)/1000, s.v)
				}
			}
		}
	}
	// Counters grow and gauges walk, except the constant ones and the rare drops.
	for _, n := range w.MetricNames() {
		switch n {
		case "node_filesystem_size_bytes", "node_memory_MemTotal_bytes", "node_memory_SwapFree_bytes", "node_boot_time_seconds", "node_network_receive_drop_total":
			require.False(t, moved[n] && n != "node_network_receive_drop_total", "%s changed", n)
		default:
			require.True(t, moved[n], "%s never changed", n)
		}
	}
}

func TestChurn(t *testing.T) {
	const series = 1000
	// 10% every 4 rounds.
	w := testWorkload(t, WorkloadConfig{Series: series, BatchSize: 128, Churn: 0.1, ChurnInterval: time.Minute})
	seenEver := map[string]bool{}
	var prev []string // labels by slot
	for r := range 41 {
		var cur []string
		for _, b := range w.Batches() {
			for _, s := range send(t, w, b, r) {
				requireValidLabels(t, s.labels)
				cur = append(cur, s.key())
			}
		}
		require.Len(t, cur, series)
		changed, unique := 0, map[string]bool{}
		for i, k := range cur {
			unique[k] = true
			if prev != nil && prev[i] != k {
				changed++
				require.False(t, seenEver[k], "round %d: a churned-in series existed before", r)
			}
			seenEver[k] = true
		}
		require.Len(t, unique, series, "round %d: active series are distinct", r)
		if prev != nil {
			want := 0
			if r%4 == 0 {
				want = series / 10
			}
			require.Equal(t, want, changed, "round %d", r)
		}
		prev = cur
	}
	// 10 events of 100 series.
	require.Equal(t, int64(series+1000), w.SeriesCreated())
	require.Len(t, seenEver, series+1000)
}

func TestChurnWrapsAround(t *testing.T) {
	// 30% of 100 series every round: event k replaces positions [30(k-1), 30k)
	// of the slots repeated end to end.
	w := testWorkload(t, WorkloadConfig{Series: 100, BatchSize: 100, Churn: 0.3, ChurnInterval: 15 * time.Second})
	b := w.Batches()[0]
	for r := range 5 {
		b.Next(r)
	}
	// 4 events: positions [0, 120): slots 0-19 twice, 20-99 once.
	for i, g := range b.gens {
		want := uint64(1)
		if i < 20 {
			want = 2
		}
		require.Equal(t, want, g, "slot %d", i)
	}
	require.Equal(t, int64(220), w.SeriesCreated())
}

func TestCompressionIsSnappy(t *testing.T) {
	w := testWorkload(t, WorkloadConfig{Series: 2000, BatchSize: 2000})
	raw := w.Batches()[0].Next(0)
	got, err := snappy.Decode(nil, s2.EncodeSnappy(nil, raw))
	require.NoError(t, err)
	require.Equal(t, raw, got)
}

func TestWorkloadConfigValidate(t *testing.T) {
	valid := WorkloadConfig{Series: 10, BatchSize: 5, Tenants: 1, Protocol: ProtocolRW1, Start: testStart, ScrapeInterval: time.Second}
	for _, c := range []struct {
		name    string
		modify  func(*WorkloadConfig)
		wantErr string
	}{
		{"valid", func(*WorkloadConfig) {}, ""},
		{"no series", func(c *WorkloadConfig) { c.Series = 0 }, "series must be at least 1"},
		{"no batch", func(c *WorkloadConfig) { c.BatchSize = 0 }, "batch size"},
		{"more tenants than series", func(c *WorkloadConfig) { c.Tenants = 11 }, "tenants"},
		{"protocol", func(c *WorkloadConfig) { c.Protocol = "rw3" }, "protocol"},
		{"interval", func(c *WorkloadConfig) { c.ScrapeInterval = 0 }, "scrape interval"},
		{"churn share", func(c *WorkloadConfig) { c.Churn = 1.5 }, "churn must be"},
		{"churn interval", func(c *WorkloadConfig) { c.Churn, c.ChurnInterval = 0.1, time.Millisecond }, "churn interval"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := valid
			c.modify(&cfg)
			err := cfg.Validate()
			if c.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.wantErr)
		})
	}
}
