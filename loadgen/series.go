package loadgen

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// valueKind is how a series' value moves from one sample to the next.
type valueKind uint8

const (
	// counterFloat grows by a random positive amount (seconds counters).
	counterFloat valueKind = iota
	// counterInt grows by a random positive whole amount (bytes, packets).
	counterInt
	// gaugeWalk takes a random step within [0, 2*base].
	gaugeWalk
	// gaugeWalkInt is gaugeWalk with whole values (bytes, counts).
	gaugeWalkInt
	// gaugeConst never changes (sizes, boot time).
	gaugeConst
	// gaugeClock is the sample's timestamp in seconds (node_time_seconds).
	gaugeClock
)

func (k valueKind) counter() bool { return k == counterFloat || k == counterInt }

// family is a node_exporter metric family. Each of its variants (sets of
// metric-specific labels) is one series per host.
type family struct {
	name, help string
	kind       valueKind
	// base is the typical initial value; rate the typical growth per second of
	// a counter or the typical step of a gauge per scrape.
	base, rate float64
	variants   [][]label
}

// label is a label name and value.
type label struct{ name, value string }

// seriesTemplate is one series of a host: a family and a variant of it.
type seriesTemplate struct {
	family *family
	labels []label // metric-specific labels, not sorted
}

var (
	cpuModes = []string{"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"}
	// cpuShare is the share of a CPU's time spent in each mode of cpuModes.
	cpuShare = []float64{0.78, 0.02, 0.001, 0.005, 0.01, 0.002, 0.05, 0.13}
	disks    = []string{"nvme0n1", "nvme1n1", "nvme2n1"}
	netDevs  = []string{"eth0", "eth1", "lo"}
	// Filesystems: device, fstype, mountpoint.
	filesystems = [][3]string{
		{"/dev/nvme0n1p1", "ext4", "/"},
		{"/dev/nvme0n1p15", "vfat", "/boot/efi"},
		{"/dev/nvme1n1", "xfs", "/var/lib/containerd"},
	}
	regions = []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1"}
)

// hostsPerCluster is how many consecutive hosts share a cluster.
const hostsPerCluster = 64

// families returns the metric families of one host.
func families() []*family {
	var cpu [][]label
	for c := range 4 {
		for _, m := range cpuModes {
			cpu = append(cpu, []label{{"cpu", fmt.Sprint(c)}, {"mode", m}})
		}
	}
	devices := func(names ...string) [][]label {
		v := make([][]label, 0, len(names))
		for _, n := range names {
			v = append(v, []label{{"device", n}})
		}
		return v
	}
	var fs [][]label
	for _, f := range filesystems {
		fs = append(fs, []label{{"device", f[0]}, {"fstype", f[1]}, {"mountpoint", f[2]}})
	}
	disk, net, none := devices(disks...), devices(netDevs...), [][]label{nil}
	const gib = 1 << 30
	return []*family{
		{"node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", counterFloat, 1e6, 1, cpu},
		{"node_disk_read_bytes_total", "The total number of bytes read successfully.", counterInt, 5e10, 2e6, disk},
		{"node_disk_written_bytes_total", "The total number of bytes written successfully.", counterInt, 8e10, 4e6, disk},
		{"node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", counterFloat, 2e4, 0.05, disk},
		{"node_disk_reads_completed_total", "The total number of reads completed successfully.", counterInt, 3e6, 50, disk},
		{"node_disk_writes_completed_total", "The total number of writes completed successfully.", counterInt, 6e6, 120, disk},
		{"node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.", gaugeWalkInt, 60 * gib, 20 << 20, fs},
		{"node_filesystem_free_bytes", "Filesystem free space in bytes.", gaugeWalkInt, 64 * gib, 20 << 20, fs},
		{"node_filesystem_size_bytes", "Filesystem size in bytes.", gaugeConst, 200 * gib, 0, fs},
		{"node_filesystem_files_free", "Filesystem total free file nodes.", gaugeWalkInt, 1e7, 200, fs},
		{"node_network_receive_bytes_total", "Network device statistic receive_bytes.", counterInt, 4e11, 3e6, net},
		{"node_network_transmit_bytes_total", "Network device statistic transmit_bytes.", counterInt, 3e11, 2e6, net},
		{"node_network_receive_packets_total", "Network device statistic receive_packets.", counterInt, 5e8, 3000, net},
		{"node_network_transmit_packets_total", "Network device statistic transmit_packets.", counterInt, 4e8, 2500, net},
		{"node_network_receive_drop_total", "Network device statistic receive_drop.", counterInt, 100, 0.01, net},
		{"node_memory_MemAvailable_bytes", "Memory information field MemAvailable_bytes.", gaugeWalkInt, 9 * gib, 64 << 20, none},
		{"node_memory_MemFree_bytes", "Memory information field MemFree_bytes.", gaugeWalkInt, 2 * gib, 64 << 20, none},
		{"node_memory_Cached_bytes", "Memory information field Cached_bytes.", gaugeWalkInt, 6 * gib, 32 << 20, none},
		{"node_memory_Buffers_bytes", "Memory information field Buffers_bytes.", gaugeWalkInt, 300 << 20, 1 << 20, none},
		{"node_memory_MemTotal_bytes", "Memory information field MemTotal_bytes.", gaugeConst, 16 * gib, 0, none},
		{"node_memory_SwapFree_bytes", "Memory information field SwapFree_bytes.", gaugeConst, 0, 0, none},
		{"node_load1", "1m load average.", gaugeWalk, 1.2, 0.3, none},
		{"node_load5", "5m load average.", gaugeWalk, 1.1, 0.1, none},
		{"node_load15", "15m load average.", gaugeWalk, 1.0, 0.05, none},
		{"node_context_switches_total", "Total number of context switches.", counterInt, 8e9, 9000, none},
		{"node_intr_total", "Total number of interrupts serviced.", counterInt, 5e9, 6000, none},
		{"node_forks_total", "Total number of forks.", counterInt, 3e6, 5, none},
		{"node_procs_running", "Number of processes in runnable state.", gaugeWalkInt, 3, 1, none},
		{"node_procs_blocked", "Number of processes blocked waiting for I/O to complete.", gaugeWalkInt, 1, 1, none},
		{"node_vmstat_pgfault", "/proc/vmstat information field pgfault.", counterInt, 9e9, 20000, none},
		{"node_vmstat_pgmajfault", "/proc/vmstat information field pgmajfault.", counterInt, 2e5, 0.5, none},
		{"node_netstat_Tcp_CurrEstab", "Statistic TcpCurrEstab.", gaugeWalkInt, 120, 5, none},
		{"node_sockstat_TCP_inuse", "Number of TCP sockets in state inuse.", gaugeWalkInt, 90, 4, none},
		{"node_filefd_allocated", "File descriptor statistics: allocated.", gaugeWalkInt, 4000, 20, none},
		{"node_entropy_available_bits", "Bits of available entropy.", gaugeWalkInt, 256, 8, none},
		{"node_timex_offset_seconds", "Time offset in between local system and reference clock.", gaugeWalk, 0.0005, 0.0001, none},
		{"node_pressure_cpu_waiting_seconds_total", "Total time in seconds that processes have waited for CPU time.", counterFloat, 3e3, 0.01, none},
		{"node_pressure_io_waiting_seconds_total", "Total time in seconds that processes have waited due to IO congestion.", counterFloat, 2e3, 0.005, none},
		{"node_pressure_memory_waiting_seconds_total", "Total time in seconds that processes have waited for memory.", counterFloat, 10, 0.0001, none},
		{"node_boot_time_seconds", "Node boot time, in unixtime.", gaugeConst, 1.7e9, 0, none},
		{"node_time_seconds", "System time in seconds since epoch (1970).", gaugeClock, 0, 0, none},
	}
}

// hostTemplates returns the series of one host, in slot order.
func hostTemplates() []seriesTemplate {
	var ts []seriesTemplate
	for _, f := range families() {
		for _, v := range f.variants {
			ts = append(ts, seriesTemplate{family: f, labels: v})
		}
	}
	return ts
}

// host is the identity of a node_exporter target.
type host struct {
	cluster, env, instance, region string
}

// hostOf returns host h of the workload with the given seed. Distinct hosts have
// distinct instance labels, so distinct slots or generations have distinct
// label sets.
func hostOf(seed, h uint64) host {
	c := h / hostsPerCluster
	cx := mix(seed ^ 0xc1 ^ c*0x9e3779b97f4a7c15)
	region := regions[cx%uint64(len(regions))]
	env := "production"
	if (cx>>32)%4 == 0 {
		env = "staging"
	}
	// An odd multiplier permutes the 24 low bits: addresses look scattered but
	// never repeat.
	ip := (h*0x9e3b5 + seed*0x1f1) & 0xffffff
	instance := fmt.Sprintf("ip-10-%d-%d-%d.%s.compute.internal:9100", ip>>16, ip>>8&0xff, ip&0xff, region)
	if hi := h >> 24; hi > 0 {
		instance = fmt.Sprintf("ip-10-%d-%d-%d-%d.%s.compute.internal:9100", hi, ip>>16, ip>>8&0xff, ip&0xff, region)
	}
	return host{
		cluster:  fmt.Sprintf("%s-%s-%03d", env[:4], region, c),
		env:      env,
		instance: instance,
		region:   region,
	}
}

// seriesLabels returns the labels of a series of template t on host hs, sorted
// by name.
func seriesLabels(t *seriesTemplate, hs *host) []label {
	ls := make([]label, 0, 6+len(t.labels))
	ls = append(ls,
		label{"__name__", t.family.name},
		label{"cluster", hs.cluster},
		label{"env", hs.env},
		label{"instance", hs.instance},
		label{"job", "node-exporter"},
		label{"region", hs.region},
	)
	ls = append(ls, t.labels...)
	slices.SortFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
	return ls
}

// initialValue returns the first value and the per-scrape growth (counters) or
// step (gauges) of a new series of template t at timestamp ts (ms), from the
// random number r.
func initialValue(t *seriesTemplate, r uint64, interval float64, ts int64) (v, step float64) {
	f := t.family
	u := unitFloat(r)
	w := unitFloat(mix(r))
	switch f.kind {
	case counterFloat:
		rate := f.rate
		if f.name == "node_cpu_seconds_total" {
			rate = cpuShare[slices.Index(cpuModes, labelValue(t.labels, "mode"))]
		}
		return math.Round(f.base*(0.5+u)*1000) / 1000, rate * (0.2 + 1.6*w) * interval
	case counterInt:
		return math.Round(f.base * (0.5 + u)), f.rate * (0.2 + 1.6*w) * interval
	case gaugeWalk:
		return f.base * (0.5 + u), f.rate
	case gaugeWalkInt:
		return math.Round(f.base * (0.5 + u)), f.rate
	case gaugeClock:
		return float64(ts) / 1000, 0
	default:
		return f.base, 0
	}
}

// nextValue returns the value after v of a series of the given kind, typical
// value base and step, at timestamp ts (ms), from the random number r.
func nextValue(kind valueKind, base, v, step float64, r uint64, ts int64) float64 {
	switch kind {
	case counterFloat:
		return v + step*(0.5+unitFloat(r))
	case counterInt:
		return v + math.Floor(step*(0.5+unitFloat(r)))
	case gaugeWalk, gaugeWalkInt:
		v += step * (unitFloat(r) - 0.5) * 2
		if kind == gaugeWalkInt {
			v = math.Round(v)
		}
		// Reflect at the bounds.
		if v < 0 {
			v = -v
		}
		if hi := 2 * base; v > hi {
			v = 2*hi - v
		}
		return v
	case gaugeClock:
		return float64(ts) / 1000
	default:
		return v
	}
}

func labelValue(ls []label, name string) string {
	for _, l := range ls {
		if l.name == name {
			return l.value
		}
	}
	return ""
}

// mix is the splitmix64 finalizer: a bijective hash of x.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// unitFloat maps r to [0, 1).
func unitFloat(r uint64) float64 { return float64(r>>11) / (1 << 53) }
