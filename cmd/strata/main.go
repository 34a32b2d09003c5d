// Command strata is the single binary of strata: each component is a subcommand.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"google.golang.org/grpc/experimental"

	"github.com/stratametrics/strata/receive"
)

// command is a subcommand: it registers its flags on the application and returns
// the function that runs it once flags are parsed.
type command func(app *kingpin.Application) (name string, run func(logger *slog.Logger, reg *prometheus.Registry) error)

func init() {
	// Every buffer gRPC takes from its pool is filled with a whole message, so
	// it need not be zeroed first; see receive.NewGRPCBufferPool.
	experimental.SetDefaultBufferPool(receive.NewGRPCBufferPool())
}

func main() {
	os.Exit(runMain(os.Args[1:]))
}

func runMain(args []string) int {
	app := kingpin.New("strata", "Durable, highly available, multi-tenant long-term storage for Prometheus.")
	app.Version(version.Print("strata"))
	app.HelpFlag.Short('h')
	logLevel := app.Flag("log.level", "Only log messages with the given severity or above: debug, info, warn, error.").
		Default("info").Enum("debug", "info", "warn", "error")
	logFormat := app.Flag("log.format", "Output format of log messages: logfmt or json.").
		Default("logfmt").Enum("logfmt", "json")

	runs := registerCommands(app)
	// Last, so that it sees every other command's flags.
	name, run := referenceCommand(app, os.Stdout)
	runs[name] = run

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "strata: %v\n", err)
		return 2
	}
	logger := newLogger(os.Stderr, *logLevel, *logFormat)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("strata"),
	)

	if err := runs[cmd](logger.With("component", cmd), reg); err != nil {
		logger.Error("exiting", "component", cmd, "err", err)
		return 1
	}
	return 0
}

// registerCommands registers every subcommand on app and returns their run
// functions by full command name. Tests check the flags of deploy/ with it.
func registerCommands(app *kingpin.Application) map[string]func(*slog.Logger, *prometheus.Registry) error {
	runs := map[string]func(*slog.Logger, *prometheus.Registry) error{}
	for _, c := range []command{
		commandOf(registerReceive, runReceive), queryCommand, commandOf(registerStore, runStore),
		commandOf(registerCompact, runCompact), commandOf(registerRule, runRule), commandOf(registerQueryFrontend, runQueryFrontend),
		commandOf(registerUp, runUp), toolsCommand, commandOf(registerSidecar, runSidecar),
	} {
		name, run := c(app)
		runs[name] = run
	}
	for name, run := range toolsBucketCommands(app) {
		runs[name] = run
	}
	return runs
}

func newLogger(w *os.File, level, format string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(level))) // the flag is an enum of valid levels
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
