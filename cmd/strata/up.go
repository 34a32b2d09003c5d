package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/hashring"
)

// The embedded ring: three receivers, every series on two of them.
const (
	upReceivers          = 3
	upReplicationFactor  = 2
	upSelfScrapeJob      = "strata"
	upDefaultRWAddress   = ":19291"
	upDefaultHTTPAddress = ":10902"
)

type upConfig struct {
	dataDir          string
	rwAddress        string
	httpAddress      string
	selfScrapeEvery  time.Duration
	disableSelfScape bool
}

func upCommand(app *kingpin.Application) (string, func(*slog.Logger, *prometheus.Registry) error) {
	cmd := app.Command("up", "Run a whole strata in one process: three receivers in one gossip ring (RF=2) shipping to a filesystem bucket, a store gateway over the bucket, a compactor of the bucket and a querier over all of them, storing their own metrics.")
	c := &upConfig{}
	cmd.Flag("data-dir", "Directory for the receivers' TSDBs and the filesystem bucket.").Default("./data").StringVar(&c.dataDir)
	cmd.Flag("remote-write.address", "Address to listen on for remote write (path /api/v1/receive).").Default(upDefaultRWAddress).StringVar(&c.rwAddress)
	cmd.Flag("http-address", "Address to listen on for the Prometheus HTTP API (Grafana, PromQL), /metrics, /-/healthy, /-/ready and /api/v1/ring.").Default(upDefaultHTTPAddress).StringVar(&c.httpAddress)
	cmd.Flag("self-scrape-interval", "How often strata stores its own metrics.").Default("15s").DurationVar(&c.selfScrapeEvery)
	cmd.Flag("self-scrape.disable", "Do not store strata's own metrics.").BoolVar(&c.disableSelfScape)
	return cmd.FullCommand(), func(logger *slog.Logger, reg *prometheus.Registry) error {
		return runUp(c, logger, reg)
	}
}

func runUp(c *upConfig, logger *slog.Logger, reg *prometheus.Registry) error {
	bucket := fmt.Sprintf("{type: FILESYSTEM, config: {directory: %q}}", filepath.Join(c.dataDir, "bucket"))
	var receivers []*receiver
	var query *queryComponent
	closeAll := func() error {
		var errs []error
		if query != nil {
			errs = append(errs, query.close())
		}
		for _, r := range receivers {
			errs = append(errs, r.close())
		}
		return errors.Join(errs...)
	}
	for i := range upReceivers {
		name := fmt.Sprintf("receive-%d", i)
		args := []string{
			"--cluster.node-name=" + name,
			"--tsdb.path=" + filepath.Join(c.dataDir, name),
			"--objstore.config=" + bucket,
			fmt.Sprintf("--receive.replication-factor=%d", upReplicationFactor),
			"--grpc-address=127.0.0.1:0",
			"--cluster.address=127.0.0.1:0",
			"--http-address=",
			"--remote-write.address=127.0.0.1:0",
		}
		if i == 0 {
			args[len(args)-1] = "--remote-write.address=" + c.rwAddress
		} else {
			args = append(args, "--cluster.join="+receivers[0].cl.gossip.LocalAddr())
		}
		rc, err := parseReceiveArgs(args)
		if err != nil {
			return errors.Join(err, closeAll())
		}
		// One label name for every part, so that metrics they share (bucket
		// operations) stay one consistent family.
		r, err := newReceiver(rc, prometheus.WrapRegistererWith(prometheus.Labels{"component": name}, reg), nil, logger.With("receiver", name))
		if err != nil {
			return errors.Join(fmt.Errorf("start %s: %w", name, err), closeAll())
		}
		receivers = append(receivers, r)
	}

	// A store gateway serves the blocks the receivers ship to the bucket.
	sc, err := parseStoreArgs([]string{
		"--objstore.config=" + bucket,
		"--data-dir=" + filepath.Join(c.dataDir, "store"),
		"--sync-block-duration=1m",
	})
	if err != nil {
		return errors.Join(err, closeAll())
	}
	gw, err := newStoreGateway(context.Background(), sc, prometheus.WrapRegistererWith(prometheus.Labels{"component": "store"}, reg), logger.With("component", "store"))
	if err != nil {
		return errors.Join(fmt.Errorf("start the store gateway: %w", err), closeAll())
	}
	if err := gw.listenGRPC("127.0.0.1:0"); err != nil {
		return errors.Join(fmt.Errorf("start the store gateway: %w", err), closeAll())
	}

	// A compactor merges the receivers' replica blocks into one per tenant,
	// each sample once, compacts them into larger blocks, downsamples them and
	// deletes what they replace.
	cc, err := parseCompactArgs([]string{
		"--objstore.config=" + bucket,
		"--data-dir=" + filepath.Join(c.dataDir, "compact"),
		"--wait",
		"--deduplication.replica-label=" + replicaLabel,
	})
	if err != nil {
		return errors.Join(err, closeAll())
	}
	comp, err := newCompactorComponent(context.Background(), cc, prometheus.WrapRegistererWith(prometheus.Labels{"component": "compact"}, reg), logger.With("component", "compact"))
	if err != nil {
		return errors.Join(fmt.Errorf("start the compactor: %w", err), closeAll())
	}

	// Ready once every receiver replayed its WAL and the ring holds all of them:
	// writes before that would land on owners that change a moment later.
	ready := func() bool {
		if !gw.ready.Load() {
			return false
		}
		for _, r := range receivers {
			if !r.mgr.Ready() {
				return false
			}
		}
		active := 0
		for _, m := range receivers[0].cl.gossip.Members() {
			if m.State == hashring.StateActive {
				active++
			}
		}
		return active == upReceivers
	}
	qc := &queryConfig{}
	qapp := kingpin.New("strata", "")
	qc.register(qapp.Command("query", ""))
	qargs := []string{"query"}
	for _, r := range receivers {
		qargs = append(qargs, "--endpoint="+r.grpcLis.Addr().String())
	}
	qargs = append(qargs, "--endpoint="+gw.grpcLis.Addr().String())
	if _, err := qapp.Parse(qargs); err != nil {
		return errors.Join(fmt.Errorf("querier flags: %w", err), closeAll())
	}
	query, err = newQueryComponent(qc, prometheus.WrapRegistererWith(prometheus.Labels{"component": "query"}, reg), logger.With("component", "query"))
	if err != nil {
		return errors.Join(err, closeAll())
	}

	ops := opsMux(reg, ready)
	ops.Handle("/api/v1/ring", receivers[0].cl.statusHandler())
	query.register(ops)
	opsSrv, opsLis, err := listen(c.httpAddress, ops)
	if err != nil {
		return errors.Join(fmt.Errorf("listen for http: %w", err), closeAll())
	}

	var g run.Group
	for _, r := range receivers {
		r.addTo(&g)
	}
	query.addTo(&g)
	gw.addTo(&g, logger.With("component", "store"))
	gw.serveGRPC(&g, logger.With("component", "store"))
	addCompactor(&g, comp, cc.wait, time.Duration(cc.waitInterval))
	addServer(&g, opsSrv, opsLis, logger.With("server", "http"))
	rwURL := remoteWriteURL(receivers[0].rwLis.Addr())
	if !c.disableSelfScape {
		ctx, cancel := context.WithCancel(context.Background())
		s := &selfScraper{
			gatherer: reg,
			url:      rwURL,
			job:      upSelfScrapeJob,
			instance: opsLis.Addr().String(),
			interval: c.selfScrapeEvery,
			ready:    ready,
			client:   &http.Client{Timeout: 10 * time.Second},
			logger:   logger,
		}
		g.Add(func() error { return s.run(ctx) }, func(error) { cancel() })
	}
	g.Add(signalActor(context.Background(), func() {
		for _, r := range receivers {
			r.leave()
		}
	}))

	httpURL := "http://" + hostPort(opsLis.Addr().String())
	logger.Info("strata is up", "remote_write_url", rwURL, "query_url", httpURL, "data", c.dataDir)
	fmt.Printf("\nstrata is up.\n  Prometheus remote_write: url: %s\n  Query (Grafana, PromQL): %s  e.g. %s/api/v1/query?query=up\n  Data:                    %s\n\n",
		rwURL, httpURL, httpURL, c.dataDir)

	runErr := g.Run()
	if err := closeAll(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	logger.Info("shutdown complete")
	if errors.Is(runErr, errInterrupted) {
		return nil
	}
	return runErr
}
