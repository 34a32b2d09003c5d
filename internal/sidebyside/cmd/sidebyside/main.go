// Command sidebyside benchmarks remote-write ingestion of strata (one receiver,
// and three at replication factor 3), Prometheus and VictoriaMetrics under the
// same load, one system at a time, and writes docs/benchmarks.md. `make bench`
// runs it; see package internal/sidebyside for the method.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kingpin/v2"

	"github.com/stratametrics/strata/internal/sidebyside"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	app := kingpin.New("sidebyside", "Benchmark remote-write ingestion of strata side by side with Prometheus and VictoriaMetrics.")
	app.HelpFlag.Short('h')
	var (
		cfg      = sidebyside.Config{Load: sidebyside.DefaultLoad()}
		systems  string
		out      string
		logLevel string
	)
	app.Flag("strata", "strata binary: receivers, querier and load generator.").Default("bin/strata").StringVar(&cfg.Strata)
	app.Flag("prometheus", "Prometheus binary, a path or a name in PATH.").Default("prometheus").StringVar(&cfg.Prometheus)
	app.Flag("victoria-metrics", "VictoriaMetrics single-node binary, a path or a name in PATH.").Default("victoria-metrics").StringVar(&cfg.VictoriaMetrics)
	app.Flag("systems", "Comma-separated systems to run, of "+strings.Join(sidebyside.Systems(), ",")+".").
		Default(strings.Join(sidebyside.Systems(), ",")).StringVar(&systems)
	app.Flag("series", "Distinct series.").Default(fmt.Sprint(cfg.Load.Series)).IntVar(&cfg.Load.Series)
	app.Flag("batch-size", "Samples per remote-write request.").Default(fmt.Sprint(cfg.Load.BatchSize)).IntVar(&cfg.Load.BatchSize)
	app.Flag("concurrency", "Concurrent senders.").Default(fmt.Sprint(cfg.Load.Concurrency)).IntVar(&cfg.Load.Concurrency)
	app.Flag("duration", "Measured duration per system.").Default(cfg.Load.Duration.String()).DurationVar(&cfg.Load.Duration)
	app.Flag("warmup", "Unmeasured warm-up before the measured duration.").Default(cfg.Load.Warmup.String()).DurationVar(&cfg.Load.Warmup)
	app.Flag("out", "Markdown report to write; what follows its "+sidebyside.NotesMarker+" line is kept. Empty writes none.").
		Default("docs/benchmarks.md").StringVar(&out)
	app.Flag("log.level", "Only log messages with the given severity or above: debug, info, warn, error.").
		Default("info").EnumVar(&logLevel, "debug", "info", "warn", "error")
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "sidebyside: %v\n", err)
		return 2
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(logLevel))) // the flag is an enum of valid levels
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	for s := range strings.SplitSeq(systems, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Systems = append(cfg.Systems, s)
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "sidebyside: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := sidebyside.Run(ctx, cfg)
	if rep == nil {
		cfg.Logger.Error("benchmark", "err", err)
		return 1
	}
	fmt.Print(rep.Tables())
	code := 0
	if err != nil {
		cfg.Logger.Error("benchmark interrupted", "err", err)
		code = 1
	}
	if out != "" {
		if err := rep.WriteMarkdown(out); err != nil {
			cfg.Logger.Error("write report", "err", err)
			return 1
		}
		cfg.Logger.Info("report written", "path", out)
	}
	if rep.Failed() {
		cfg.Logger.Error("some systems could not be measured: see their rows")
		code = 1
	}
	return code
}
