package querier_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// reasonStartTimestamps explains why start_timestamps.test is skipped.
const reasonStartTimestamps = "the Store API's chunks carry no start timestamps: the TSDB store re-encodes XOR2 chunks as XOR, " +
	"so functions that use start timestamps cannot see them through any store"

// promqlSkip is one built-in eval that cannot pass through the Store API.
type promqlSkip struct {
	line   int    // 1-based line of the eval command; 0 skips the whole file
	eval   string // the eval command, to notice when the corpus changes
	reason string
}

// promqlSkips returns the built-in evals that are skipped, by file.
func promqlSkips() map[string][]promqlSkip {
	return map[string][]promqlSkip{
		"testdata/start_timestamps.test": {{reason: reasonStartTimestamps}},
	}
}

// skippingT runs the built-in test files as parallel subtests and applies
// promqlSkips: a file with skipped evals is read from the prometheus module's
// source and run with those evals turned into comments, so that the rest of it
// still runs.
type skippingT struct {
	*testing.T
	engine     promql.QueryEngine
	newStorage func(testing.TB) storage.Storage
}

func (s skippingT) Run(name string, f func(*testing.T)) bool {
	return s.T.Run(name, func(t *testing.T) {
		t.Parallel()
		skips, ok := promqlSkips()[name]
		if !ok {
			f(t)
			return
		}
		if skips[0].line == 0 {
			t.Skip(skips[0].reason)
		}
		content := promqlTestFile(t, name)
		lines := strings.Split(content, "\n")
		for _, sk := range skips {
			require.Less(t, sk.line-1, len(lines), "skip list out of date")
			require.Equal(t, sk.eval, strings.TrimSpace(lines[sk.line-1]), "skip list out of date at line %d", sk.line)
			// Comment out the eval and its expectations, up to the blank line
			// that ends the command; line numbers stay the same.
			for i := sk.line - 1; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
				lines[i] = "# skipped: " + lines[i]
			}
			t.Logf("skipped line %d %q: %s", sk.line, sk.eval, sk.reason)
		}
		promqltest.RunTestWithStorage(t, strings.Join(lines, "\n"), s.engine, s.newStorage)
	})
}

// promqlTestFile returns a built-in test file from the prometheus module's
// source, which the go tool locates.
func promqlTestFile(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/prometheus/prometheus").Output()
	if err != nil {
		t.Skipf("locate the prometheus module to read %s: %v", name, err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "promql", "promqltest", name))
	require.NoError(t, err)
	return string(data)
}

// TestPromQLBuiltins runs Prometheus' own PromQL test corpus against strata's
// read path: samples are written to a real TSDB, and read back through three
// Store API servers over it (replicas receive_replica="0" and "1", and a second
// copy of replica "1"), an endpoint set and the Queryable, with dedup on and
// partial response off. Every series thus comes back as two replicas, one of
// them from two endpoints with identical chunks, and must be merged to exactly
// what the TSDB holds.
func TestPromQLBuiltins(t *testing.T) {
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	newStorage := func(tb testing.TB) storage.Storage { return newStrataStorage(tb) }
	promqltest.RunBuiltinTestsWithStorage(skippingT{T: t, engine: engine, newStorage: newStorage}, engine, newStorage)
}

// strataStorage writes to a TSDB and reads through the Store API.
type strataStorage struct {
	*querier.Queryable
	db    *tsdb.DB
	set   *querier.EndpointSet
	stops []func()
}

func newStrataStorage(tb testing.TB) *strataStorage {
	tb.Helper()
	// The options of Prometheus' teststorage, minus start timestamps, which
	// the Store API's chunks do not carry, and exemplars, which it does not
	// serve; a small stripe size makes the many TSDBs of the corpus cheap.
	opts := tsdb.DefaultOptions()
	opts.MinBlockDuration = int64(24 * time.Hour / time.Millisecond)
	opts.MaxBlockDuration = int64(24 * time.Hour / time.Millisecond)
	opts.RetentionDuration = 0
	opts.OutOfOrderTimeWindow = 0
	opts.StripeSize = 64
	db, err := tsdb.Open(tb.TempDir(), nil, nil, opts, nil)
	require.NoError(tb, err)

	s := &strataStorage{db: db}
	var addrs []string
	for _, replica := range []string{"0", "1", "1"} {
		store := storeapi.NewTSDBStore(db, labels.FromStrings("receive_replica", replica), "receive", nil)
		addr, stop := serveLoopback(tb, store, store)
		addrs = append(addrs, addr)
		s.stops = append(s.stops, stop)
	}
	s.set, err = querier.NewEndpointSet(querier.EndpointSetOptions{Endpoints: addrs}, nil, nil)
	require.NoError(tb, err)
	s.Queryable = querier.NewQueryable(s.set, querier.Options{DisablePartialResponse: true}, nil, nil)
	require.NoError(tb, s.refresh())
	return s
}

// serveLoopback serves a store on a loopback port until stop is called.
func serveLoopback(tb testing.TB, store storepb.StoreServer, info infopb.InfoServer) (string, func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	srv := grpc.NewServer()
	storepb.RegisterStoreServer(srv, store)
	infopb.RegisterInfoServer(srv, info)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	return lis.Addr().String(), func() {
		srv.Stop()
		require.NoError(tb, <-served)
	}
}

// refresh makes the endpoint set learn the TSDB's new time range, as its next
// Info poll would.
func (s *strataStorage) refresh() error {
	if err := s.set.Refresh(context.Background()); err != nil {
		return err
	}
	for _, e := range s.set.Endpoints() {
		if !e.Healthy {
			return e.LastError
		}
	}
	return nil
}

func (s *strataStorage) Appender(ctx context.Context) storage.Appender {
	return &refreshingAppender{Appender: s.db.Appender(ctx), s: s}
}

func (s *strataStorage) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &refreshingAppenderV2{AppenderV2: s.db.AppenderV2(ctx), s: s}
}

func (s *strataStorage) StartTime() (int64, error) { return s.db.StartTime() }

func (s *strataStorage) Close() error {
	err := s.set.Close()
	for _, stop := range s.stops {
		stop()
	}
	return errors.Join(err, s.db.Close())
}

type refreshingAppender struct {
	storage.Appender
	s *strataStorage
}

func (a *refreshingAppender) Commit() error {
	if err := a.Appender.Commit(); err != nil {
		return err
	}
	return a.s.refresh()
}

type refreshingAppenderV2 struct {
	storage.AppenderV2
	s *strataStorage
}

func (a *refreshingAppenderV2) Commit() error {
	if err := a.AppenderV2.Commit(); err != nil {
		return err
	}
	return a.s.refresh()
}
