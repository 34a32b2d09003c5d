package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/stratametrics/strata/hashring"
	"github.com/stratametrics/strata/receive"
	"github.com/stratametrics/strata/ruler"
)

// The embedded ring: three receivers, every series on two of them.
const (
	upReceivers          = 3
	upReplicationFactor  = 2
	upSelfScrapeJob      = "strata"
	upDefaultRWAddress   = ":19291"
	upDefaultHTTPAddress = ":10902"
	upRuleFlushDeadline  = 10 * time.Second
)

type upConfig struct {
	dataDir          string
	rwAddress        string
	httpAddress      string
	selfScrapeEvery  time.Duration
	disableSelfScape bool
	ruleFiles        []string
	evalInterval     model.Duration
	alertmanagerURLs []string
	limitsFile       string
	tenantsFile      string
	rwTLS            *serverTLS
	frontend         queryFrontendFlags
}

// upExampleRules is the rule file strata up writes into an empty rules
// directory on its first start.
//
//go:embed up_rules.yaml
var upExampleRules []byte

// registerUp registers the up command and its flags on app.
func registerUp(app *kingpin.Application) (*kingpin.CmdClause, *upConfig) {
	cmd := app.Command("up", "Run a whole strata in one process: three receivers in one gossip ring (RF=2) shipping to a filesystem bucket, a store gateway over the bucket, a compactor of the bucket, a querier over all of them behind a query frontend, and a ruler, storing their own metrics.")
	c := &upConfig{}
	cmd.Flag("data-dir", "Directory for the receivers' TSDBs and the filesystem bucket.").Default("./data").StringVar(&c.dataDir)
	cmd.Flag("remote-write.address", "Address to listen on for remote write (path /api/v1/receive).").Default(upDefaultRWAddress).StringVar(&c.rwAddress)
	cmd.Flag("http-address", "Address to listen on for the web UI (/), the Prometheus HTTP API (Grafana, PromQL), /metrics, /-/healthy, /-/ready and /api/v1/ring.").Default(upDefaultHTTPAddress).StringVar(&c.httpAddress)
	cmd.Flag("self-scrape-interval", "How often strata stores its own metrics.").Default("15s").DurationVar(&c.selfScrapeEvery)
	cmd.Flag("self-scrape.disable", "Do not store strata's own metrics.").BoolVar(&c.disableSelfScape)
	cmd.Flag("rule-file", "Prometheus rule file the ruler evaluates; a glob pattern matches several. Repeatable. Default: <data-dir>/rules/*.yaml, where an example is written on the first start.").
		PlaceHolder("<glob>").StringsVar(&c.ruleFiles)
	cmd.Flag("rule.eval-interval", "Evaluation interval of rule groups that set none.").Default("1m").SetValue(&c.evalInterval)
	cmd.Flag("alertmanagers.url", "Alertmanager the ruler sends alerts to, as http://host:port[/prefix]. Repeatable.").
		PlaceHolder("<url>").StringsVar(&c.alertmanagerURLs)
	cmd.Flag("limits.config-file", "YAML file of per-tenant limits for the receivers and retention for the compactor; re-read when it changes. See strata receive --help.").
		PlaceHolder("<file>").StringVar(&c.limitsFile)
	cmd.Flag("auth.tenants-file", "YAML file mapping bearer token hashes and client certificate fields to tenants; with it every write to --remote-write.address must authenticate (see strata receive --help). Queries are not confined; strata query --auth.tenants-file does that. Re-read when it changes.").
		PlaceHolder("<file>").StringVar(&c.tenantsFile)
	c.rwTLS = registerServerTLS(cmd, "remote-write")
	c.frontend.register(cmd)
	return cmd, c
}

// upRuleFiles returns the rule file patterns of the ruler.
func upRuleFiles(c *upConfig) []string {
	if len(c.ruleFiles) > 0 {
		return c.ruleFiles
	}
	return []string{filepath.Join(c.dataDir, "rules", "*.yaml")}
}

// newUpRuler builds the ruler of strata up: it evaluates over the querier's
// Store API endpoints with its own engine, writes into the ring at rwURL and,
// when no rule file is given, uses <data-dir>/rules, where it writes the
// example rules if the directory does not exist yet.
func newUpRuler(c *upConfig, endpointArgs []string, rwURL string, reg prometheus.Registerer, logger *slog.Logger) (*ruler.Ruler, error) {
	if len(c.ruleFiles) == 0 {
		dir := filepath.Join(c.dataDir, "rules")
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, "example.yaml"), upExampleRules, 0o644); err != nil {
				return nil, err
			}
		}
	}
	args := append([]string{
		"--data-dir=" + filepath.Join(c.dataDir, "rule"),
		"--eval-interval=" + c.evalInterval.String(),
		"--remote-write.url=" + rwURL,
	}, endpointArgs...)
	for _, f := range upRuleFiles(c) {
		args = append(args, "--rule-file="+f)
	}
	for _, u := range c.alertmanagerURLs {
		args = append(args, "--alertmanagers.url="+u)
	}
	rc, err := parseRuleArgs(args)
	if err != nil {
		return nil, err
	}
	cfg, err := rc.rulerConfig()
	if err != nil {
		return nil, err
	}
	// Shutdown waits at most this long for queued results; the rest stay in
	// the ruler's WAL and are sent after the next start.
	cfg.FlushDeadline = upRuleFlushDeadline
	return ruler.New(cfg, reg, logger)
}

func runUp(c *upConfig, logger *slog.Logger, reg *prometheus.Registry) error {
	bucket := fmt.Sprintf("{type: FILESYSTEM, config: {directory: %q}}", filepath.Join(c.dataDir, "bucket"))
	var receivers []*receiver
	var query *queryComponent
	var rule *ruler.Ruler
	closeAll := func() error {
		var errs []error
		if rule != nil {
			errs = append(errs, rule.Close())
		}
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
		join := ""
		if i > 0 {
			join = receivers[0].cl.gossip.LocalAddr()
		}
		rc, err := parseReceiveArgs(upReceiverArgs(c, i, bucket, join))
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
	compactArgs := []string{
		"--objstore.config=" + bucket,
		"--data-dir=" + filepath.Join(c.dataDir, "compact"),
		"--wait",
		"--deduplication.replica-label=" + replicaLabel,
	}
	if c.limitsFile != "" {
		compactArgs = append(compactArgs, "--limits.config-file="+c.limitsFile)
	}
	cc, err := parseCompactArgs(compactArgs)
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

	// strata's own writes (the ruler's results, the self-scrape) carry no
	// credential: they go to a receiver that only listens on loopback, never
	// to the public address, which may require TLS and a tenant credential.
	rwURL := remoteWriteURL(receivers[1].rwLis.Addr())
	publicRWURL := c.rwTLS.scheme() + "://" + hostPort(receivers[0].rwLis.Addr().String()) + receive.Path
	// The ruler has a registry of its own: its metrics share names with the
	// receivers' and the querier's, with other labels (a WAL without a
	// tenant), which one registry refuses. /metrics gathers both.
	ruleReg := prometheus.NewRegistry()
	gatherer := prometheus.Gatherers{reg, ruleReg}
	rule, err = newUpRuler(c, qargs[1:], rwURL, prometheus.WrapRegistererWith(prometheus.Labels{"component": "rule"}, ruleReg), logger.With("component", "rule"))
	if err != nil {
		return errors.Join(fmt.Errorf("start the ruler: %w", err), closeAll())
	}

	ops := opsMux(gatherer, func() bool { return ready() && rule.Ready() })
	ops.Handle("/api/v1/ring", receivers[0].cl.statusHandler())
	ops.Handle("/api/v1/tenants", tenantsHandler(receivers, upReplicationFactor))
	// The ruler's own rules and alerts API, rather than the querier's
	// aggregation of remote rulers.
	query.api.Register(ops)
	rule.Register(ops)
	query.registerUI(ops, gw.bkt, logger.With("component", "ui"))
	// The query frontend answers range queries on the HTTP port: it splits,
	// caches and shards them and sends the pieces to the querier, which
	// serves everything on a loopback port of its own.
	innerSrv, innerLis, err := listen("127.0.0.1:0", ops)
	if err != nil {
		return errors.Join(fmt.Errorf("listen for the querier: %w", err), closeAll())
	}
	fe, closeFrontendCache, err := c.frontend.build([]*url.URL{{Scheme: "http", Host: innerLis.Addr().String()}}, nil, 0,
		prometheus.WrapRegistererWith(prometheus.Labels{"component": "query-frontend"}, reg), logger.With("component", "query-frontend"))
	if err != nil {
		innerLis.Close()
		return errors.Join(fmt.Errorf("start the query frontend: %w", err), closeAll())
	}
	defer closeFrontendCache()
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/query_range" {
			fe.ServeHTTP(w, r)
			return
		}
		ops.ServeHTTP(w, r)
	})
	opsSrv, opsLis, err := listen(c.httpAddress, front)
	if err != nil {
		innerLis.Close()
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
	addServer(&g, innerSrv, innerLis, logger.With("server", "querier-http"))
	ruleCtx, stopRule := context.WithCancel(context.Background())
	ruleDone := make(chan struct{})
	g.Add(func() error { defer close(ruleDone); return rule.Run(ruleCtx) }, func(error) { stopRule() })
	g.Add(reloadOnSIGHUP(context.Background(), rule.Reload))
	if !c.disableSelfScape {
		ctx, cancel := context.WithCancel(context.Background())
		s := &selfScraper{
			gatherer: gatherer,
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
		// The ruler stops first and sends what it holds while the ring still
		// takes writes; what it cannot send stays in its WAL for the next start.
		stopRule()
		<-ruleDone
		if err := rule.Close(); err != nil {
			logger.Warn("stop the ruler", "component", "rule", "err", err)
		}
		for _, r := range receivers {
			r.leave()
		}
	}))

	httpURL := "http://" + hostPort(opsLis.Addr().String())
	logger.Info("strata is up", "remote_write_url", publicRWURL, "query_url", httpURL, "data", c.dataDir)
	fmt.Printf("\nstrata is up.\n  Web UI:                  %s\n  Prometheus remote_write: url: %s\n  Query (Grafana, PromQL): %s  e.g. %s/api/v1/query?query=up\n  Rules and alerts:        %s/api/v1/rules  (files: %s)\n  Data:                    %s\n\n",
		httpURL, publicRWURL, httpURL, httpURL, httpURL, strings.Join(upRuleFiles(c), ", "), c.dataDir)

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

// upReceiverArgs returns the flags of receiver i of strata up. Receiver 0
// takes the public remote write address, with its TLS and tenants file; the
// others listen on loopback ports and join receiver 0's gossip address join.
func upReceiverArgs(c *upConfig, i int, bucket, join string) []string {
	name := fmt.Sprintf("receive-%d", i)
	args := []string{
		"--cluster.node-name=" + name,
		"--tsdb.path=" + filepath.Join(c.dataDir, name),
		"--objstore.config=" + bucket,
		fmt.Sprintf("--receive.replication-factor=%d", upReplicationFactor),
		"--grpc-address=127.0.0.1:0",
		"--cluster.address=127.0.0.1:0",
		"--http-address=",
	}
	if c.limitsFile != "" {
		args = append(args, "--limits.config-file="+c.limitsFile)
	}
	if i > 0 {
		return append(args, "--remote-write.address=127.0.0.1:0", "--cluster.join="+join)
	}
	args = append(args, "--remote-write.address="+c.rwAddress)
	if c.tenantsFile != "" {
		args = append(args, "--auth.tenants-file="+c.tenantsFile)
	}
	if c.rwTLS.enabled() {
		for _, f := range []struct{ flag, file string }{
			{"tls-cert", c.rwTLS.cfg.CertFile},
			{"tls-key", c.rwTLS.cfg.KeyFile},
			{"tls-client-ca", c.rwTLS.cfg.ClientCAFile},
		} {
			if f.file != "" {
				args = append(args, "--remote-write."+f.flag+"="+f.file)
			}
		}
	}
	return args
}
