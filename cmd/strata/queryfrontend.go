package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/queryfrontend"
	"github.com/stratametrics/strata/storegw/cache"
	"github.com/stratametrics/strata/tenancy"
	"github.com/stratametrics/strata/tlsconfig"
)

// queryFrontendFlags are the frontend's flags that strata up shares: how
// range queries are split, cached and sharded, and the slow-query log.
type queryFrontendFlags struct {
	splitInterval      time.Duration
	align              bool
	maxRetries         int
	maxParallelism     int
	cacheSize          cache.Bytes
	memcachedAddresses []string
	memcachedTimeout   time.Duration
	memcachedItemSize  cache.Bytes
	freshness          time.Duration
	slowQueries        time.Duration
	shards             int
	tenantHeader       string
	defaultTenant      string
}

func (f *queryFrontendFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("query-range.split-interval", "Split range queries at multiples of this interval since the Unix epoch (UTC midnights for 24h) and run the pieces in parallel; each piece is cached on its own. 0 disables splitting and the results cache.").
		Default("24h").DurationVar(&f.splitInterval)
	cmd.Flag("query-range.align-range-with-step", "Snap the start and end of range queries down and up to multiples of the step, as Grafana does, so that clients that do not align share cached results. It moves such queries' evaluation times; without it, every answer is exactly the queriers'.").
		Default("false").BoolVar(&f.align)
	cmd.Flag("query-range.max-retries-per-request", "Times a request is sent again, to the next querier, when a querier cannot be reached or answers 502, 503 or 504.").
		Default("3").IntVar(&f.maxRetries)
	cmd.Flag("query-range.max-query-parallelism", "Most requests to the queriers one range query has in flight.").
		Default("14").IntVar(&f.maxParallelism)
	cmd.Flag("query-range.response-cache-max-size", "In-memory results cache, in bytes (such as 256MB); 0 disables the results cache unless memcached is set.").
		Default("256MB").SetValue(&f.cacheSize)
	cmd.Flag("query-range.response-cache-memcached-addresses", "A memcached server to keep the results cache on instead of in memory; repeatable, keys are spread over the servers. While memcached fails, queries are answered uncached with a warning, never an error.").
		PlaceHolder("<host:port>").StringsVar(&f.memcachedAddresses)
	cmd.Flag("query-range.response-cache-memcached-timeout", "Time limit of one memcached operation, connecting included; past it a lookup is a miss.").
		Default("500ms").DurationVar(&f.memcachedTimeout)
	cmd.Flag("query-range.response-cache-memcached-max-item-size", "Largest cached piece stored on memcached; larger pieces are not cached. Keep it at most the servers' item size limit (memcached -I, 1MB by default).").
		Default("1MB").SetValue(&f.memcachedItemSize)
	cmd.Flag("query-range.response-cache-max-freshness", "Results newer than this are never cached, because samples for them may still arrive (remote-write delay, out-of-order samples, replicas catching up).").
		Default("1m").DurationVar(&f.freshness)
	cmd.Flag("query-range.shards", "Run aggregations that allow it (sum, count, max, min, group, count_values with any grouping; avg, stddev, stdvar, quantile, topk, bottomk with by or without) over a single series selector as this many queries in parallel, each over the series whose label hash falls in its shard, and combine the answers; 1 disables sharding. The queriers filter the series after reading them, so sharding spreads the evaluation over queriers and cores, not the reads.").
		Default("1").IntVar(&f.shards)
	cmd.Flag("query-frontend.log-queries-longer-than", "Log every request that takes longer than this, with its query, range, tenant and cache outcome; 0 disables the log.").
		Default("5s").DurationVar(&f.slowQueries)
	cmd.Flag("query-frontend.tenant-header", "HTTP header that names the request's tenant, passed to the queriers and part of every cache key (with a hash of the Authorization header).").
		Default(tenancy.DefaultTenantHeader).StringVar(&f.tenantHeader)
	cmd.Flag("query-frontend.default-tenant-id", "Tenant of a request without the tenant header.").
		Default(querier.DefaultTenantID).StringVar(&f.defaultTenant)
}

// build returns the frontend over downstreams, with its results cache, and
// a function that closes the cache.
func (f *queryFrontendFlags) build(downstreams []*url.URL, transport http.RoundTripper, timeout time.Duration, reg prometheus.Registerer, logger *slog.Logger) (*queryfrontend.Frontend, func(), error) {
	cfg := queryfrontend.Config{
		Downstreams:        downstreams,
		Transport:          transport,
		DownstreamTimeout:  timeout,
		MaxRetries:         f.maxRetries,
		SplitInterval:      f.splitInterval,
		AlignRangeWithStep: f.align,
		MaxParallelism:     f.maxParallelism,
		CacheFreshness:     f.freshness,
		SlowQueryThreshold: f.slowQueries,
		Shards:             f.shards,
		TenantHeader:       f.tenantHeader,
		DefaultTenant:      f.defaultTenant,
		Logger:             logger,
		Registerer:         reg,
	}
	closeCache := func() {}
	cacheable := f.splitInterval > 0
	switch {
	case len(f.memcachedAddresses) > 0 && cacheable:
		mc, err := cache.NewMemcached("query-range-results", cache.MemcachedConfig{
			Addresses:   f.memcachedAddresses,
			Timeout:     f.memcachedTimeout,
			MaxItemSize: f.memcachedItemSize,
		}, reg, logger.With("cache", "query-range-results"))
		if err != nil {
			return nil, nil, fmt.Errorf("--query-range.response-cache-memcached-addresses: %w", err)
		}
		cfg.Cache, closeCache = mc, func() { mc.Close() }
		logger.Info("results cache on memcached", "addresses", f.memcachedAddresses)
	case f.cacheSize > 0 && cacheable:
		cfg.Cache = cache.NewLRU("query-range-results", int64(f.cacheSize), 0, reg)
	}
	fe, err := queryfrontend.New(cfg)
	if err != nil {
		closeCache()
		return nil, nil, err
	}
	return fe, closeCache, nil
}

type queryFrontendConfig struct {
	httpAddress   string
	httpTLS       *serverTLS
	downstreams   []string
	downstreamTLS *tlsconfig.ClientConfig
	timeout       time.Duration
	frontend      queryFrontendFlags
}

func registerQueryFrontend(app *kingpin.Application) (*kingpin.CmdClause, *queryFrontendConfig) {
	cmd := app.Command("query-frontend", "Serve the Prometheus HTTP API in front of queriers: split range queries by day, cache and shard them, retry on another querier; pass everything else through.")
	c := &queryFrontendConfig{}
	cmd.Flag("http-address", "Address to listen on for the Prometheus HTTP API (/api/v1/...), /metrics, /-/healthy and /-/ready.").
		Default(":10904").StringVar(&c.httpAddress)
	cmd.Flag("query-frontend.downstream-url", "Base URL of a querier (strata query), such as http://querier:10902; repeatable, requests go to them in turn.").
		PlaceHolder("<url>").Required().StringsVar(&c.downstreams)
	cmd.Flag("query-frontend.downstream-timeout", "Time limit of one request to a querier.").
		Default("2m").DurationVar(&c.timeout)
	c.httpTLS = registerServerTLS(cmd, "http")
	c.downstreamTLS = tlsconfig.RegisterClientFlags(cmd, "query-frontend.downstream")
	c.frontend.register(cmd)
	return cmd, c
}

func runQueryFrontend(c *queryFrontendConfig, logger *slog.Logger, reg *prometheus.Registry) error {
	var downstreams []*url.URL
	for _, s := range c.downstreams {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--query-frontend.downstream-url %q: want an http or https base URL such as http://querier:10902", s)
		}
		downstreams = append(downstreams, u)
	}
	client, err := newHTTPClientTLS("query-frontend.downstream", c.downstreamTLS, reg, logger)
	if err != nil {
		return err
	}
	var transport http.RoundTripper
	if client != nil {
		transport = client.Transport
	}
	fe, closeCache, err := c.frontend.build(downstreams, transport, c.timeout, reg, logger.With("component", "query-frontend"))
	if err != nil {
		return err
	}
	defer closeCache()
	mux := opsMux(reg, func() bool { return true })
	mux.Handle("/", fe)
	srv, lis, err := listenTLS(c.httpAddress, mux, c.httpTLS, reg, logger)
	if err != nil {
		return err
	}
	var g run.Group
	addServer(&g, srv, lis, logger.With("server", "http"))
	g.Add(signalActor(context.Background(), func() {}))
	logger.Info("serving the Prometheus HTTP API in front of the queriers", "url", c.httpTLS.scheme()+"://"+hostPort(lis.Addr().String())+"/api/v1/query_range", "queriers", c.downstreams)
	if err := g.Run(); err != nil && !errors.Is(err, errInterrupted) {
		return err
	}
	return nil
}
