package sidebyside

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// systems returns every system in the order they run.
func systems() []system {
	return []system{
		{name: StrataRF1, deploy: func(ctx context.Context, h *harness, dir string, d *deployment) error {
			return deployStrata(ctx, h, dir, 1, d)
		}},
		{name: StrataRF3, deploy: func(ctx context.Context, h *harness, dir string, d *deployment) error {
			return deployStrata(ctx, h, dir, 3, d)
		}},
		{name: Prometheus, deploy: deployPrometheus},
		{name: VictoriaMetrics, deploy: deployVictoriaMetrics},
	}
}

// binary resolves a binary given as a path or a name in PATH.
func binary(what, bin string) (string, error) {
	if bin == "" {
		return "", fmt.Errorf("no %s binary given", what)
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("%s binary: %w", what, err)
	}
	return p, nil
}

// deployStrata starts n receivers, at replication factor n over a static
// hashring file when n > 1, and a querier over all of them for the read-back.
func deployStrata(ctx context.Context, h *harness, dir string, n int, d *deployment) error {
	bin, err := binary("strata", h.cfg.Strata)
	if err != nil {
		return err
	}
	// Per receiver: remote write, HTTP, gRPC; then the querier's HTTP.
	addrs, err := freeAddrs(3*n + 1)
	if err != nil {
		return err
	}
	rw, ops, grpcs := make([]string, n), make([]string, n), make([]string, n)
	for i := range n {
		rw[i], ops[i], grpcs[i] = addrs[3*i], addrs[3*i+1], addrs[3*i+2]
	}
	queryAddr := addrs[3*n]

	var ringFile string
	if n > 1 {
		ring, err := json.Marshal([]map[string][]string{{"endpoints": grpcs}})
		if err != nil {
			return err
		}
		ringFile = filepath.Join(dir, "hashrings.json")
		if err := os.WriteFile(ringFile, ring, 0o644); err != nil {
			return fmt.Errorf("write hashring file: %w", err)
		}
	}
	for i := range n {
		name := fmt.Sprintf("r%d", i)
		args := []string{
			"receive",
			"--remote-write.address=" + rw[i],
			"--http-address=" + ops[i],
			"--grpc-address=" + grpcs[i],
			"--tsdb.path=" + filepath.Join(dir, name),
			"--cluster.node-name=" + name,
			fmt.Sprintf("--label=receive_replica=%q", name),
		}
		if n > 1 {
			args = append(args,
				fmt.Sprintf("--receive.replication-factor=%d", n),
				"--receive.hashrings-file="+ringFile,
				"--receive.local-endpoint="+grpcs[i],
			)
		}
		p, err := startProcess("strata receive "+name, bin, args...)
		if err != nil {
			return err
		}
		d.servers = append(d.servers, p)
		d.writeURLs = append(d.writeURLs, "http://"+rw[i]+"/api/v1/receive")
	}
	for i := range n {
		if err := waitFor(ctx, d.servers[i].name+" ready", startTimeout, d.servers, ready200(h.client, "http://"+ops[i]+"/-/ready")); err != nil {
			return err
		}
		if n > 1 {
			if err := waitFor(ctx, d.servers[i].name+" ring", startTimeout, d.servers, ringReady(h, "http://"+ops[i]+"/api/v1/ring", grpcs)); err != nil {
				return err
			}
		}
	}

	// The querier runs during the load, idle and unmeasured, so that it has
	// discovered every receiver by the time the generator reads back.
	args := []string{
		"query",
		"--http-address=" + queryAddr,
		"--query.replica-label=receive_replica",
		"--endpoint.info-interval=1s",
	}
	for _, g := range grpcs {
		args = append(args, "--endpoint="+g)
	}
	q, err := startProcess("strata query", bin, args...)
	if err != nil {
		return err
	}
	d.helpers = append(d.helpers, q)
	base := "http://" + queryAddr
	all := append([]*process{q}, d.servers...)
	if err := waitFor(ctx, "strata query ready", startTimeout, all, ready200(h.client, base+"/-/ready")); err != nil {
		return err
	}
	if err := waitFor(ctx, "strata query endpoints", startTimeout, all, func(ctx context.Context) error {
		body, err := get(ctx, h.client, base+"/metrics")
		if err != nil {
			return err
		}
		if healthy, _ := metricSum(body, "strata_querier_endpoints", `health="healthy"`); int(healthy) != n {
			return fmt.Errorf("%v of %d endpoints healthy", healthy, n)
		}
		return nil
	}); err != nil {
		return err
	}
	d.readBackURL = base
	return nil
}

// ringReady is a readiness condition: the receiver's /api/v1/ring shows one
// ring of exactly the given endpoints, none unhealthy.
func ringReady(h *harness, url string, endpoints []string) func(context.Context) error {
	return func(ctx context.Context) error {
		body, err := get(ctx, h.client, url)
		if err != nil {
			return err
		}
		var status struct {
			Data struct {
				Rings []struct {
					Members []struct {
						Address string `json:"address"`
						State   string `json:"state"`
					} `json:"members"`
				} `json:"rings"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &status); err != nil {
			return fmt.Errorf("decode %s: %w", url, err)
		}
		if len(status.Data.Rings) != 1 {
			return fmt.Errorf("%d rings, want 1", len(status.Data.Rings))
		}
		var got []string
		for _, m := range status.Data.Rings[0].Members {
			if m.State == "UNHEALTHY" {
				return fmt.Errorf("member %s unhealthy", m.Address)
			}
			got = append(got, m.Address)
		}
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(endpoints)); !slices.Equal(got, want) {
			return fmt.Errorf("ring members %v, want %v", got, want)
		}
		return nil
	}
}

// deployPrometheus starts Prometheus as a remote-write receiver that scrapes
// nothing.
func deployPrometheus(ctx context.Context, h *harness, dir string, d *deployment) error {
	bin, err := binary("prometheus", h.cfg.Prometheus)
	if err != nil {
		return err
	}
	addrs, err := freeAddrs(1)
	if err != nil {
		return err
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("global:\n  scrape_interval: 15s\n"), 0o644); err != nil {
		return fmt.Errorf("write prometheus config: %w", err)
	}
	p, err := startProcess("prometheus", bin,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addrs[0],
		"--web.enable-remote-write-receiver",
	)
	if err != nil {
		return err
	}
	d.servers = append(d.servers, p)
	base := "http://" + addrs[0]
	if err := waitFor(ctx, "prometheus ready", startTimeout, d.servers, ready200(h.client, base+"/-/ready")); err != nil {
		return err
	}
	d.writeURLs = []string{base + "/api/v1/write"}
	d.readBackURL = base
	return nil
}

// deployVictoriaMetrics starts single-node VictoriaMetrics so that data is
// searchable as soon as it is flushed, whatever its timestamps: no latency
// offset hiding the newest samples, no response cache, a retention that keeps
// everything, and query limits that admit reading back every series.
func deployVictoriaMetrics(ctx context.Context, h *harness, dir string, d *deployment) error {
	bin, err := binary("victoria-metrics", h.cfg.VictoriaMetrics)
	if err != nil {
		return err
	}
	addrs, err := freeAddrs(1)
	if err != nil {
		return err
	}
	p, err := startProcess("victoria-metrics", bin,
		"-storageDataPath="+filepath.Join(dir, "data"),
		"-httpListenAddr="+addrs[0],
		"-retentionPeriod=100y",
		"-search.latencyOffset=0s",
		"-search.disableCache",
		fmt.Sprintf("-search.maxUniqueTimeseries=%d", max(4*h.cfg.Load.Series, 1_000_000)),
		"-search.maxQueryDuration=5m",
	)
	if err != nil {
		return err
	}
	d.servers = append(d.servers, p)
	base := "http://" + addrs[0]
	if err := waitFor(ctx, "victoria-metrics healthy", startTimeout, d.servers, ready200(h.client, base+"/health")); err != nil {
		return err
	}
	d.writeURLs = []string{base + "/api/v1/write"}
	d.readBackURL = base
	// Recently written rows sit in memory buffers for a while before a search
	// sees them; a forced flush makes them visible at once.
	d.afterLoad = func(ctx context.Context) error {
		_, err := get(ctx, h.client, base+"/internal/force_flush")
		return err
	}
	return nil
}
