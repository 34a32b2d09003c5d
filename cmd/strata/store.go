package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"

	"github.com/stratametrics/strata/hashring"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/storegw/blocksync"
	"github.com/stratametrics/strata/storegw/bucketstore"
	"github.com/stratametrics/strata/storegw/cache"
)

type storeConfig struct {
	objstore                 *objstoreFlags
	dataDir                  string
	grpcAddress, httpAddress string
	syncInterval             model.Duration
	minTime, maxTime         blocksync.TimeOrDuration
	consistencyDelay         model.Duration
	ignoreDeletionMarksDelay model.Duration
	syncConcurrency          int
	ringMembers              []string
	ringSelf                 string
	postingsCache            cache.Bytes
	seriesCache              cache.Bytes
	chunksCache              cache.Bytes
	memcachedAddresses       []string
	memcachedTimeout         time.Duration
	limitSeries              int64
	limitSamples             int64
	grpcTLS, httpTLS         *serverTLS
}

// parseStoreArgs parses `store` flags into a configuration, with every default
// applied; strata up builds its store gateway with it.
func parseStoreArgs(args []string) (*storeConfig, error) {
	return parseCommandArgs(registerStore, args)
}

// registerStore registers the store command and its flags on app.
func registerStore(app *kingpin.Application) (*kingpin.CmdClause, *storeConfig) {
	cmd := app.Command("store", "Serve the blocks in object storage over the Store API (a store gateway), reading only the parts of each block a query needs.")
	c := &storeConfig{objstore: registerObjstoreFlags(cmd)}
	cmd.Flag("data-dir", "Local cache of index headers; safe to delete.").Default("./data/store").StringVar(&c.dataDir)
	cmd.Flag("grpc-address", "Address to listen on for the Store API.").Default(":10901").StringVar(&c.grpcAddress)
	cmd.Flag("http-address", "Address to listen on for /metrics, /-/healthy and /-/ready.").Default(":10902").StringVar(&c.httpAddress)
	cmd.Flag("sync-block-duration", "How often the bucket is listed for new and deleted blocks.").Default("3m").SetValue(&c.syncInterval)
	cmd.Flag("min-time", "Serve only blocks with data after this time: RFC 3339, or relative to now such as -2w. Default: no bound.").
		PlaceHolder("<time>").SetValue(&c.minTime)
	cmd.Flag("max-time", "Serve only blocks with data before this time: RFC 3339, or relative to now such as -1d. Default: no bound.").
		PlaceHolder("<time>").SetValue(&c.maxTime)
	cmd.Flag("consistency-delay", "Ignore blocks younger than this (by their ULID time), so that uploads in progress are not served.").
		Default("0s").SetValue(&c.consistencyDelay)
	cmd.Flag("ignore-deletion-marks-delay", "Keep serving a block marked for deletion until its mark is this old; the compactor deletes it later (--delete-delay).").
		Default("24h").SetValue(&c.ignoreDeletionMarksDelay)
	cmd.Flag("block-sync-concurrency", "Block metas and deletion marks read from the bucket at once.").Default("20").IntVar(&c.syncConcurrency)
	cmd.Flag("store.ring-member", "Name of a store gateway sharing the bucket, this one included; repeatable. With members, each block is served by the one gateway its ID hashes to.").
		PlaceHolder("<name>").StringsVar(&c.ringMembers)
	cmd.Flag("store.ring-self", "This gateway's name among --store.ring-member.").PlaceHolder("<name>").StringVar(&c.ringSelf)
	cmd.Flag("store.cache.postings-size", "In-memory cache of postings lists read from the bucket, in bytes (such as 256MB); 0 disables it.").
		Default("128MB").SetValue(&c.postingsCache)
	cmd.Flag("store.cache.series-size", "In-memory cache of series entries read from the bucket, in bytes; 0 disables it.").
		Default("128MB").SetValue(&c.seriesCache)
	cmd.Flag("store.cache.chunks-size", "In-memory cache of chunks read from the bucket, in bytes; 0 disables it.").
		Default("256MB").SetValue(&c.chunksCache)
	cmd.Flag("store.cache.memcached-addresses", "A memcached server to keep the postings, series and chunks caches on instead of in memory, which makes the --store.cache.*-size flags unused; repeatable, keys are spread over the servers. An unreachable server turns lookups into misses and logs a warning; it never fails a query.").
		PlaceHolder("<host:port>").StringsVar(&c.memcachedAddresses)
	cmd.Flag("store.cache.memcached-timeout", "Time limit of one memcached operation, connecting included; past it a lookup is a miss.").
		Default("500ms").DurationVar(&c.memcachedTimeout)
	cmd.Flag("store.limits.request-series", "Most series one Series request may touch; more fails the request with ResourceExhausted. 0 means no limit.").
		Default("0").Int64Var(&c.limitSeries)
	cmd.Flag("store.limits.request-samples", "Most samples one Series request may fetch, counted by whole chunks; more fails the request with ResourceExhausted. 0 means no limit.").
		Default("0").Int64Var(&c.limitSamples)
	c.grpcTLS = registerServerTLS(cmd, "grpc")
	c.httpTLS = registerServerTLS(cmd, "http")
	return cmd, c
}

// storeGateway is a built store gateway: a bucket store fed by a block syncer.
type storeGateway struct {
	// bkt is the bucket the gateway serves.
	bkt     objstore.Bucket
	store   *bucketstore.Store
	syncer  *blocksync.Syncer
	ready   atomic.Bool // the first sync succeeded
	grpcLis net.Listener
	grpcSrv *grpc.Server
	// caches are closed when the gateway stops.
	caches *cache.Gateway
	// grpcOpts turn on TLS for the Store API when --grpc.tls-* are set.
	grpcOpts []grpc.ServerOption
}

func newStoreGateway(ctx context.Context, c *storeConfig, reg prometheus.Registerer, logger *slog.Logger) (*storeGateway, error) {
	grpcOpts, err := c.grpcTLS.grpcOptions(reg, logger)
	if err != nil {
		return nil, err
	}
	bkt, err := c.objstore.bucket(ctx, reg, logger)
	if err != nil {
		return nil, err
	}
	if bkt == nil {
		return nil, errors.New("no bucket to serve: give --objstore.config-file or --objstore.config")
	}
	filters := []blocksync.Filter{
		blocksync.ConsistencyDelayFilter{Delay: time.Duration(c.consistencyDelay)},
		blocksync.TimeFilter{MinTime: c.minTime, MaxTime: c.maxTime},
		blocksync.NewDeletionMarkFilter(bkt, time.Duration(c.ignoreDeletionMarksDelay), c.syncConcurrency, logger),
	}
	if len(c.ringMembers) > 0 || c.ringSelf != "" {
		shard, err := gatewayShardFilter(c.ringMembers, c.ringSelf)
		if err != nil {
			return nil, err
		}
		filters = append(filters, shard)
	}
	caches, err := c.caches(reg, logger)
	if err != nil {
		return nil, err
	}
	gw := &storeGateway{bkt: bkt, store: bucketstore.NewStore(bkt, c.dataDir, reg, logger,
		bucketstore.WithCaches(*caches),
		bucketstore.WithLimits(c.limitSeries, c.limitSamples),
	), caches: caches, grpcOpts: grpcOpts}
	fetcher := blocksync.NewFetcher(bkt, blocksync.FetcherConfig{Concurrency: c.syncConcurrency, Filters: filters}, reg, logger)
	gw.syncer = blocksync.NewSyncer(fetcher, blocksync.SyncerConfig{
		SyncInterval: time.Duration(c.syncInterval),
		OnAdd:        gw.store.Add,
		OnRemove:     gw.store.Remove,
	}, logger)
	return gw, nil
}

// caches builds the gateway's caches: on the memcached servers of
// --store.cache.memcached-addresses if any, else in memory.
func (c *storeConfig) caches(reg prometheus.Registerer, logger *slog.Logger) (*cache.Gateway, error) {
	if len(c.memcachedAddresses) == 0 {
		return cache.NewGateway(c.postingsCache, c.seriesCache, c.chunksCache, reg), nil
	}
	g, err := cache.NewMemcachedGateway(cache.MemcachedConfig{
		Addresses: c.memcachedAddresses,
		Timeout:   c.memcachedTimeout,
	}, reg, logger)
	if err != nil {
		return nil, fmt.Errorf("--store.cache.memcached-addresses: %w", err)
	}
	return g, nil
}

// gatewayShardFilter spreads blocks over the gateways named by members.
func gatewayShardFilter(members []string, self string) (*blocksync.ShardFilter, error) {
	if self == "" || len(members) == 0 {
		return nil, errors.New("sharding needs both --store.ring-member (every gateway) and --store.ring-self")
	}
	eps := make([]hashring.Endpoint, 0, len(members))
	for _, m := range members {
		eps = append(eps, hashring.Endpoint{Name: m, Address: m})
	}
	ring, err := hashring.New(hashring.AlgorithmKetama, eps, 1)
	if err != nil {
		return nil, fmt.Errorf("gateway ring: %w", err)
	}
	return blocksync.NewShardFilter(ring, self)
}

// addTo syncs blocks in g: once before the gateway is ready, then periodically.
func (gw *storeGateway) addTo(g *run.Group, logger *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error {
		for !gw.ready.Load() {
			if err := gw.syncer.Sync(ctx); err != nil {
				logger.Warn("initial block sync failed; retrying", "err", err)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(5 * time.Second):
				}
				continue
			}
			gw.ready.Store(true)
			logger.Info("initial block sync done", "blocks", len(gw.syncer.Metas()))
		}
		return gw.syncer.Run(ctx)
	}, func(error) { cancel() })
}

// listenGRPC starts listening for the gateway's Store API.
func (gw *storeGateway) listenGRPC(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	gw.grpcLis, gw.grpcSrv = lis, grpc.NewServer(gw.grpcOpts...)
	storepb.RegisterStoreServer(gw.grpcSrv, gw.store)
	infopb.RegisterInfoServer(gw.grpcSrv, gw.store)
	return nil
}

// serveGRPC serves the Store API in g.
func (gw *storeGateway) serveGRPC(g *run.Group, logger *slog.Logger) {
	g.Add(func() error {
		logger.Info("listening", "server", "grpc", "address", gw.grpcLis.Addr().String())
		return gw.grpcSrv.Serve(gw.grpcLis)
	}, func(error) { gw.grpcSrv.GracefulStop() })
}

func runStore(c *storeConfig, logger *slog.Logger, reg *prometheus.Registry) error {
	gw, err := newStoreGateway(context.Background(), c, reg, logger)
	if err != nil {
		return err
	}
	if err := gw.listenGRPC(c.grpcAddress); err != nil {
		return err
	}
	srv, lis, err := listenTLS(c.httpAddress, opsMux(reg, gw.ready.Load), c.httpTLS, reg, logger)
	if err != nil {
		return errors.Join(err, gw.grpcLis.Close())
	}
	var g run.Group
	gw.addTo(&g, logger)
	addServer(&g, srv, lis, logger.With("server", "http"))
	gw.serveGRPC(&g, logger)
	g.Add(signalActor(context.Background(), func() {}))
	err = g.Run()
	if errors.Is(err, errInterrupted) {
		err = nil
	}
	return errors.Join(err, gw.caches.Close())
}
