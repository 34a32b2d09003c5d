package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/config"

	"github.com/stratametrics/strata/loadgen"
)

// benchWriteConfig holds the flags of `strata tools bench write`.
type benchWriteConfig struct {
	cfg             loadgen.Config
	protocol        string
	startTime       string
	tls             config.TLSConfig
	bearerToken     string
	bearerTokenFile string
	format          string
}

// toolsCommand registers `strata tools`, a group of commands for operators;
// for now `tools bench write`, the remote-write load generator.
func toolsCommand(app *kingpin.Application) (string, func(*slog.Logger, *prometheus.Registry) error) {
	cmd, c := registerBenchWrite(app)
	return cmd.FullCommand(), func(logger *slog.Logger, _ *prometheus.Registry) error {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return runBenchWrite(ctx, c, logger, os.Stdout)
	}
}

// toolsBucketCommands registers `tools bucket ls|inspect|verify|mark|cleanup`
// on app and returns the run function of each by its full command name, for
// main to add next to toolsCommand's; their output goes to standard output.
func toolsBucketCommands(app *kingpin.Application) map[string]func(*slog.Logger, *prometheus.Registry) error {
	return registerBucket(toolsClause(app)).commands(os.Stdout)
}

// toolsClause returns the `tools` command of app, registering it on first use,
// so each group of tools can be registered on its own.
func toolsClause(app *kingpin.Application) *kingpin.CmdClause {
	if tools := app.GetCommand("tools"); tools != nil {
		return tools
	}
	return app.Command("tools", "Tools for operating and evaluating strata.")
}

// registerBenchWrite registers `tools bench write` and its flags on app.
func registerBenchWrite(app *kingpin.Application) (*kingpin.CmdClause, *benchWriteConfig) {
	tools := toolsClause(app)
	bench := tools.Command("bench", "Benchmarks against running servers.")
	cmd := bench.Command("write", "Send node_exporter-like series by remote write, as fast as acknowledged or at a rate, and report throughput, latency, errors and the CPU and memory of client and servers. Sample time advances one scrape interval per round, ahead of the wall clock when the server is faster than real time.")
	c := &benchWriteConfig{cfg: loadgen.DefaultConfig("")}
	lc := &c.cfg
	lc.URLs = nil // the flag accumulates into it

	cmd.Flag("url", "Remote-write endpoint. Repeatable: sender i uses URL i mod the number of URLs.").
		Default("http://127.0.0.1:19291/api/v1/receive").StringsVar(&lc.URLs)
	cmd.Flag("series", "Series active at any time.").Default(strconv.Itoa(loadgen.DefaultSeries)).IntVar(&lc.Series)
	cmd.Flag("batch-size", "Samples per request: that many series, one sample each.").Default(strconv.Itoa(loadgen.DefaultBatchSize)).IntVar(&lc.BatchSize)
	cmd.Flag("concurrency", "Senders, each with one request in flight; each owns a fixed share of the batches.").Default(strconv.Itoa(loadgen.DefaultConcurrency)).IntVar(&lc.Concurrency)
	cmd.Flag("protocol", "Remote-write protocol: rw1 (prometheus.WriteRequest) or rw2 (io.prometheus.write.v2.Request).").
		Default(string(loadgen.ProtocolRW1)).EnumVar(&c.protocol, string(loadgen.ProtocolRW1), string(loadgen.ProtocolRW2))
	cmd.Flag("scrape-interval", "Sample time between two rounds; every series gets one sample per round.").Default("15s").DurationVar(&lc.ScrapeInterval)
	cmd.Flag("rate", "Samples per second to send, over all senders; 0 sends as fast as the server acknowledges.").Default("0").Float64Var(&lc.Rate)
	cmd.Flag("churn", "Share of the series (0 to 1) replaced by new ones every --churn-interval.").Default("0").Float64Var(&lc.Churn)
	cmd.Flag("churn-interval", "Sample time between two churn events.").Default("10m").DurationVar(&lc.ChurnInterval)
	cmd.Flag("tenants", "Tenants tenant-0 ... tenant-N-1 the series are divided among; with 1, requests carry no tenant header.").Default("1").IntVar(&lc.Tenants)
	cmd.Flag("tenant-header", "HTTP header that names the tenant.").Default(loadgen.DefaultTenantHeader).StringVar(&lc.TenantHeader)
	cmd.Flag("start-time", "Timestamp of the first samples: RFC 3339 or Unix seconds. Default: now.").PlaceHolder("<time>").StringVar(&c.startTime)
	cmd.Flag("seed", "Seed of label and sample values.").Default("1").Uint64Var(&lc.Seed)
	cmd.Flag("warmup", "Load sent before the measured window; acknowledged and read back, but left out of rates, latencies and CPU.").Default("10s").DurationVar(&lc.Warmup)
	cmd.Flag("duration", "Length of the measured window.").Default("60s").DurationVar(&lc.Duration)
	cmd.Flag("request-timeout", "Longest a request may take; one that takes longer counts as a transport error.").Default("30s").DurationVar(&lc.RequestTimeout)
	cmd.Flag("tls.ca-file", "CA certificates to verify the server with.").PlaceHolder("<file>").StringVar(&c.tls.CAFile)
	cmd.Flag("tls.cert-file", "Client certificate for TLS client authentication.").PlaceHolder("<file>").StringVar(&c.tls.CertFile)
	cmd.Flag("tls.key-file", "Key of the client certificate.").PlaceHolder("<file>").StringVar(&c.tls.KeyFile)
	cmd.Flag("tls.server-name", "Server name to verify the server's certificate against.").PlaceHolder("<name>").StringVar(&c.tls.ServerName)
	cmd.Flag("tls.insecure-skip-verify", "Do not verify the server's certificate.").BoolVar(&c.tls.InsecureSkipVerify)
	cmd.Flag("bearer-token", "Bearer token sent with every request.").PlaceHolder("<token>").StringVar(&c.bearerToken)
	cmd.Flag("bearer-token-file", "File holding the bearer token sent with every request.").PlaceHolder("<file>").StringVar(&c.bearerTokenFile)
	cmd.Flag("pid", "Server process whose CPU time (over the measured window) and resident memory (at its end) are reported, from /proc. Repeatable: summed.").PlaceHolder("<pid>").IntsVar(&lc.PIDs)
	cmd.Flag("read-back-url", "Base URL of a Prometheus-compatible query API (Prometheus, VictoriaMetrics, strata query) to count the stored samples with after the run.").
		PlaceHolder("<url>").StringVar(&lc.ReadBackURL)
	cmd.Flag("read-back-timeout", "Longest the read-back waits for every acknowledged sample to be found.").Default("2m").DurationVar(&lc.ReadBackTimeout)
	cmd.Flag("format", "Report format on standard output: text or json.").Default("text").EnumVar(&c.format, "text", "json")

	return cmd, c
}

// runBenchWrite runs the load and writes the report to out. A first SIGINT or
// SIGTERM (ctx) ends the load early; the report is still written.
func runBenchWrite(ctx context.Context, c *benchWriteConfig, logger *slog.Logger, out io.Writer) error {
	cfg := c.cfg
	cfg.Protocol = loadgen.Protocol(c.protocol)
	start, err := parseStartTime(c.startTime, time.Now())
	if err != nil {
		return err
	}
	cfg.Start = start

	header := http.Header{}
	token := c.bearerToken
	if c.bearerTokenFile != "" {
		if token != "" {
			return errors.New("set only one of --bearer-token and --bearer-token-file")
		}
		b, err := os.ReadFile(c.bearerTokenFile)
		if err != nil {
			return fmt.Errorf("read bearer token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	cfg.Header = header

	tlsConfig, err := config.NewTLSConfig(&c.tls)
	if err != nil {
		return fmt.Errorf("TLS configuration: %w", err)
	}
	cfg.Client = loadgen.NewClient(tlsConfig, cfg.Concurrency, cfg.RequestTimeout)

	rep, err := loadgen.Run(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if c.format == "json" {
		return rep.WriteJSON(out)
	}
	return rep.WriteText(out)
}

// parseStartTime parses --start-time: empty is now, else RFC 3339 or Unix
// seconds with an optional fraction.
func parseStartTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("--start-time %q is neither RFC 3339 nor Unix seconds", s)
	}
	return time.UnixMilli(int64(f * 1000)), nil
}
