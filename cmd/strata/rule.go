package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/ruler"
	"github.com/stratametrics/strata/tlsconfig"
	"github.com/stratametrics/strata/tsdbshard"
)

type ruleConfig struct {
	httpAddress      string
	dataDir          string
	ruleFiles        []string
	evalInterval     model.Duration
	queryURLs        []string
	endpoints        []string
	replicaLabels    []string
	partialResponse  bool
	queryTimeout     model.Duration
	remoteWriteURLs  []string
	alertmanagerURLs []string
	amTimeout        model.Duration
	amRefresh        model.Duration
	labels           []string
	forGracePeriod   model.Duration
	outageTolerance  model.Duration
	resendDelay      model.Duration
	externalURL      string

	httpTLS          *serverTLS
	queryTLS         *tlsconfig.ClientConfig
	endpointTLS      *tlsconfig.ClientConfig
	alertmanagersTLS *tlsconfig.ClientConfig
	remoteWriteTLS   *tlsconfig.ClientConfig
}

// parseRuleArgs parses the rule command's flags, for tests.
func parseRuleArgs(args []string) (*ruleConfig, error) {
	return parseCommandArgs(registerRule, args)
}

// registerRule registers the rule command and its flags on app.
func registerRule(app *kingpin.Application) (*kingpin.CmdClause, *ruleConfig) {
	cmd := app.Command("rule", "Evaluate Prometheus recording and alerting rules against the querier; remote-write the results and send alerts to Alertmanager.")
	c := &ruleConfig{}
	cmd.Flag("http-address", "Address to listen on for /api/v1/rules, /api/v1/alerts, POST /-/reload, /metrics, /-/healthy and /-/ready.").
		Default(":10903").StringVar(&c.httpAddress)
	cmd.Flag("data-dir", "Directory of the WAL that holds rule results until the remote write queues have sent them.").
		Default("./data/rule").StringVar(&c.dataDir)
	cmd.Flag("rule-file", "Prometheus rule file; a glob pattern matches several. Repeatable. Re-read on SIGHUP and POST /-/reload.").
		PlaceHolder("<glob>").StringsVar(&c.ruleFiles)
	cmd.Flag("eval-interval", "Evaluation interval of rule groups that set none.").Default("1m").SetValue(&c.evalInterval)
	cmd.Flag("query", "Base URL of a Prometheus query API (strata query), such as http://querier:10902. Repeatable; tried in turn until one answers.").
		PlaceHolder("<url>").StringsVar(&c.queryURLs)
	cmd.Flag("endpoint", "Store API endpoint (host:port, or dns+host:port for every address of a name) that the ruler's own PromQL engine evaluates rules over, instead of --query. Repeatable.").
		PlaceHolder("<address>").StringsVar(&c.endpoints)
	cmd.Flag("query.replica-label", "With --endpoint: label that tells replicas of the same data apart; deduplicated away. Repeatable.").
		Default(querier.DefaultReplicaLabels()...).StringsVar(&c.replicaLabels)
	cmd.Flag("query.partial-response", "Accept answers that miss data from some stores, for rule groups that set no partial_response_strategy. Off, such a rule's evaluation fails instead.").
		Default("false").BoolVar(&c.partialResponse)
	cmd.Flag("query.timeout", "Longest a rule query may take; 0 for no limit beyond the group's interval.").Default("0s").SetValue(&c.queryTimeout)
	cmd.Flag("remote-write.url", "Remote write URL that rule results are sent to, such as http://receive:19291/api/v1/receive. Repeatable.").
		PlaceHolder("<url>").StringsVar(&c.remoteWriteURLs)
	cmd.Flag("alertmanagers.url", "Alertmanager to send alerts to, as http://host:port[/prefix]; a host name stands for every address it resolves to, each of which gets every alert. Repeatable.").
		PlaceHolder("<url>").StringsVar(&c.alertmanagerURLs)
	cmd.Flag("alertmanagers.dns-interval", "How often Alertmanager host names are resolved again.").Default("30s").SetValue(&c.amRefresh)
	cmd.Flag("alertmanagers.send-timeout", "Longest one send to an Alertmanager may take.").Default("10s").SetValue(&c.amTimeout)
	cmd.Flag("label", "External label name=\"value\" added to results and alerts, such as ruler_replica=\"a\". Repeatable.").
		PlaceHolder("<name>=\"<value>\"").StringsVar(&c.labels)
	cmd.Flag("for-grace-period", "Minimum time an alert's for state lasts after a restore.").Default("10m").SetValue(&c.forGracePeriod)
	cmd.Flag("for-outage-tolerance", "Longest ruler outage after which for state is still restored.").Default("1h").SetValue(&c.outageTolerance)
	cmd.Flag("resend-delay", "Minimum time before a firing alert is sent to Alertmanager again.").Default("1m").SetValue(&c.resendDelay)
	cmd.Flag("alert.query-url", "Base URL of the alerts' generator links.").Default("").StringVar(&c.externalURL)
	c.httpTLS = registerServerTLS(cmd, "http")
	c.queryTLS = tlsconfig.RegisterClientFlags(cmd, "query")
	c.endpointTLS = tlsconfig.RegisterClientFlags(cmd, "endpoint")
	c.alertmanagersTLS = tlsconfig.RegisterClientFlags(cmd, "alertmanagers")
	c.remoteWriteTLS = tlsconfig.RegisterClientFlags(cmd, "remote-write")
	return cmd, c
}

// rulerConfig turns the flags into a ruler.Config.
func (c *ruleConfig) rulerConfig() (ruler.Config, error) {
	ext, err := parseLabels(c.labels)
	if err != nil {
		return ruler.Config{}, err
	}
	cfg := ruler.Config{
		DataDir:                     c.dataDir,
		RuleFiles:                   c.ruleFiles,
		EvalInterval:                time.Duration(c.evalInterval),
		QueryURLs:                   c.queryURLs,
		Endpoints:                   c.endpoints,
		ReplicaLabels:               c.replicaLabels,
		PartialResponse:             c.partialResponse,
		QueryTimeout:                time.Duration(c.queryTimeout),
		RemoteWriteURLs:             c.remoteWriteURLs,
		AlertmanagerURLs:            c.alertmanagerURLs,
		AlertmanagerTimeout:         time.Duration(c.amTimeout),
		AlertmanagerRefreshInterval: time.Duration(c.amRefresh),
		ExternalLabels:              ext,
		ForStateDropLabels:          []string{tsdbshard.DefaultTenantLabelName},
		ForGracePeriod:              time.Duration(c.forGracePeriod),
		OutageTolerance:             time.Duration(c.outageTolerance),
		ResendDelay:                 time.Duration(c.resendDelay),
		ExternalURL:                 c.externalURL,
		EndpointTLS:                 clientTLSOrNil(c.endpointTLS),
		AlertmanagerTLS:             clientTLSOrNil(c.alertmanagersTLS),
		RemoteWriteTLS:              clientTLSOrNil(c.remoteWriteTLS),
	}
	// Prometheus' clients read the files only when they connect: check them
	// now, so that a typo fails at start.
	for prefix, tc := range map[string]*tlsconfig.ClientConfig{"alertmanagers": cfg.AlertmanagerTLS, "remote-write": cfg.RemoteWriteTLS} {
		if tc != nil {
			if err := tc.Validate(); err != nil {
				return ruler.Config{}, fmt.Errorf("--%s.tls-*: %w", prefix, err)
			}
		}
	}
	return cfg, cfg.Validate()
}

func runRule(c *ruleConfig, logger *slog.Logger, reg *prometheus.Registry) (err error) {
	cfg, err := c.rulerConfig()
	if err != nil {
		return err
	}
	if cfg.QueryHTTPClient, err = newHTTPClientTLS("query", c.queryTLS, reg, logger); err != nil {
		return err
	}
	r, err := ruler.New(cfg, reg, logger)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, r.Close()) }()

	mux := opsMux(reg, r.Ready)
	r.Register(mux)
	srv, lis, err := listenTLS(c.httpAddress, mux, c.httpTLS, reg, logger)
	if err != nil {
		return err
	}

	var g run.Group
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error { return r.Run(ctx) }, func(error) { cancel() })
	addServer(&g, srv, lis, logger.With("server", "http"))
	g.Add(reloadOnSIGHUP(ctx, r.Reload))
	g.Add(signalActor(context.Background(), func() {}))
	err = g.Run()
	if errors.Is(err, errInterrupted) {
		return nil
	}
	return err
}

// reloadOnSIGHUP calls reload on every SIGHUP; reload logs its own errors and
// a failed reload keeps the process running.
func reloadOnSIGHUP(ctx context.Context, reload func() error) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(ctx)
	return func() error {
			c := make(chan os.Signal, 1)
			signal.Notify(c, syscall.SIGHUP)
			defer signal.Stop(c)
			for {
				select {
				case <-c:
					_ = reload()
				case <-ctx.Done():
					return nil
				}
			}
		}, func(error) {
			cancel()
		}
}
