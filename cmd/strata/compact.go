package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/stratametrics/strata/compactor"
	"github.com/stratametrics/strata/limits"
)

type compactConfig struct {
	objstore             *objstoreFlags
	dataDir              string
	httpAddress          string
	wait                 bool
	waitInterval         model.Duration
	consistencyDelay     model.Duration
	deleteDelay          model.Duration
	partialUploadAge     model.Duration
	retentionRaw         model.Duration
	retention5m          model.Duration
	retention1h          model.Duration
	replicaLabels        []string
	disableDownsampling  bool
	concurrency          int
	blockSyncConcurrency int
	limitsFile           string
	limitsInterval       time.Duration
	httpTLS              *serverTLS
}

// parseCompactArgs parses `compact` flags into a configuration, with every
// default applied; strata up builds its compactor with it.
func parseCompactArgs(args []string) (*compactConfig, error) {
	return parseCommandArgs(registerCompact, args)
}

// registerCompact registers the compact command and its flags on app.
func registerCompact(app *kingpin.Application) (*kingpin.CmdClause, *compactConfig) {
	cmd := app.Command("compact", "Compact, deduplicate, downsample and apply retention to the blocks in object storage. Run exactly one per bucket.")
	c := &compactConfig{objstore: registerObjstoreFlags(cmd)}
	cmd.Flag("data-dir", "Scratch directory for blocks being compacted or downsampled; wiped at start.").Default("./data/compact").StringVar(&c.dataDir)
	cmd.Flag("http-address", "Address to listen on for /metrics, /-/healthy and /-/ready.").Default(":10912").StringVar(&c.httpAddress)
	cmd.Flag("wait", "Keep running: repeat the pass every --wait-interval. Without it, one pass is run and the process exits, non-zero if anything failed.").BoolVar(&c.wait)
	cmd.Flag("wait-interval", "Time between the end of one pass and the start of the next, with --wait.").Default("5m").SetValue(&c.waitInterval)
	cmd.Flag("consistency-delay", "Ignore blocks uploaded by other components until their ULID is this old, so that uploads in progress on eventually consistent stores are not compacted.").
		Default("30m").SetValue(&c.consistencyDelay)
	cmd.Flag("delete-delay", "How long a block marked for deletion stays in the bucket, so that readers drop it first; the compactor itself ignores it after half of this.").
		Default("48h").SetValue(&c.deleteDelay)
	cmd.Flag("compact.partial-upload-age", "Delete block directories without meta.json (abandoned uploads) once their newest file is this old; at least --consistency-delay.").
		Default("48h").SetValue(&c.partialUploadAge)
	cmd.Flag("retention.resolution-raw", "How long raw samples are kept past a block's end; 0 keeps them forever. Keep it above 10d so that downsampling can finish.").
		Default("0s").SetValue(&c.retentionRaw)
	cmd.Flag("retention.resolution-5m", "How long 5m downsampled samples are kept; 0 keeps them forever.").Default("0s").SetValue(&c.retention5m)
	cmd.Flag("retention.resolution-1h", "How long 1h downsampled samples are kept; 0 keeps them forever.").Default("0s").SetValue(&c.retention1h)
	cmd.Flag("deduplication.replica-label", "External label telling replicas apart (such as receive_replica): blocks differing only in it are merged, each sample once, and the label is dropped. Irreversible. Repeatable.").
		PlaceHolder("<name>").StringsVar(&c.replicaLabels)
	cmd.Flag("downsampling.disable", "Do not downsample raw blocks to 5m and 1h.").BoolVar(&c.disableDownsampling)
	cmd.Flag("compact.concurrency", "Groups compacted, and blocks downsampled, at once.").Default("1").IntVar(&c.concurrency)
	cmd.Flag("block-sync-concurrency", "Block metas and deletion marks read from the bucket at once.").Default("20").IntVar(&c.blockSyncConcurrency)
	registerLimitsFlags(cmd, &c.limitsFile, &c.limitsInterval)
	c.httpTLS = registerServerTLS(cmd, "http")
	return cmd, c
}

// compactorConfig turns the flags into a compactor.Config.
func (c *compactConfig) compactorConfig() (compactor.Config, error) {
	if c.concurrency < 1 {
		return compactor.Config{}, fmt.Errorf("--compact.concurrency must be at least 1, not %d", c.concurrency)
	}
	cfg := compactor.Config{
		DataDir:              c.dataDir,
		ConsistencyDelay:     time.Duration(c.consistencyDelay),
		DeleteDelay:          time.Duration(c.deleteDelay),
		PartialUploadAge:     max(time.Duration(c.partialUploadAge), time.Duration(c.consistencyDelay)),
		RetentionRaw:         time.Duration(c.retentionRaw),
		Retention5m:          time.Duration(c.retention5m),
		Retention1h:          time.Duration(c.retention1h),
		ReplicaLabels:        c.replicaLabels,
		DisableDownsampling:  c.disableDownsampling,
		Concurrency:          c.concurrency,
		BlockSyncConcurrency: c.blockSyncConcurrency,
	}
	return cfg, cfg.Validate()
}

// tenantRetention loads the limits file, if any, into cfg: each tenant's
// retention applies to its blocks. The file is re-read at most every
// --limits.reload-interval, when retention is next applied.
func (c *compactConfig) tenantRetention(cfg *compactor.Config, reg prometheus.Registerer, logger *slog.Logger) error {
	if c.limitsFile == "" {
		return nil
	}
	lim, err := limits.NewOverrides(c.limitsFile, limits.Limits{}, reg, logger)
	if err != nil {
		return err
	}
	var lastRead atomic.Int64
	lastRead.Store(time.Now().UnixNano())
	cfg.TenantRetention = func(tenant string) time.Duration {
		if now := time.Now().UnixNano(); now-lastRead.Load() >= int64(c.limitsInterval) {
			lastRead.Store(now)
			_, _ = lim.Reload() // a bad file is logged and counted; the last good one stays
		}
		return time.Duration(lim.For(tenant).Retention)
	}
	return nil
}

// newCompactorComponent opens the bucket and builds the compactor.
func newCompactorComponent(ctx context.Context, c *compactConfig, reg prometheus.Registerer, logger *slog.Logger) (*compactor.Compactor, error) {
	cfg, err := c.compactorConfig()
	if err != nil {
		return nil, err
	}
	if err := c.tenantRetention(&cfg, reg, logger); err != nil {
		return nil, err
	}
	if r := time.Duration(c.retentionRaw); r > 0 && r < 10*24*time.Hour && !c.disableDownsampling {
		logger.Warn("raw retention below 10d: raw blocks may be deleted before they are downsampled to 1h", "retention", r)
	}
	bkt, err := c.objstore.bucket(ctx, reg, logger)
	if err != nil {
		return nil, err
	}
	if bkt == nil {
		return nil, errors.New("no bucket to compact: give --objstore.config-file or --objstore.config")
	}
	comp, err := compactor.New(bkt, cfg, reg, logger)
	if err != nil {
		return nil, errors.Join(err, bkt.Close())
	}
	return comp, nil
}

// addCompactor runs comp in g: passes every interval with wait, else one pass
// whose error ends the group.
func addCompactor(g *run.Group, comp *compactor.Compactor, wait bool, interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error {
		if wait {
			return comp.Run(ctx, interval)
		}
		return comp.Pass(ctx)
	}, func(error) { cancel() })
}

func runCompact(c *compactConfig, logger *slog.Logger, reg *prometheus.Registry) error {
	comp, err := newCompactorComponent(context.Background(), c, reg, logger)
	if err != nil {
		return err
	}
	srv, lis, err := listenTLS(c.httpAddress, opsMux(reg, comp.Ready), c.httpTLS, reg, logger)
	if err != nil {
		return err
	}
	var g run.Group
	addCompactor(&g, comp, c.wait, time.Duration(c.waitInterval))
	addServer(&g, srv, lis, logger.With("server", "http"))
	g.Add(signalActor(context.Background(), func() {}))
	err = g.Run()
	if errors.Is(err, errInterrupted) {
		return nil
	}
	return err
}
