package tlsconfig

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fileSet is material of type T loaded from a fixed list of files and
// reloaded, on demand, when their contents change. The current value is
// published through an atomic pointer, so readers never block and always see
// a value that parsed completely.
type fileSet[T any] struct {
	paths    []string
	parse    func(data [][]byte) (*T, error)
	interval time.Duration
	metrics  *metrics
	logger   *slog.Logger

	cur       atomic.Pointer[T]
	nextCheck atomic.Int64 // Unix nanoseconds before which no check is done.

	// mu serialises checks and guards the fields below. It is only ever
	// taken with TryLock on the handshake path, so a slow disk delays one
	// handshake at most.
	mu      sync.Mutex
	sum     [sha256.Size]byte // Contents hash of the published value.
	failKey string            // Last failure reported, to report each once.
}

func newFileSet[T any](paths []string, parse func([][]byte) (*T, error), interval time.Duration, m *metrics, logger *slog.Logger) (*fileSet[T], error) {
	f := &fileSet[T]{paths: paths, parse: parse, interval: interval, metrics: m, logger: logger}
	data, err := f.read()
	if err != nil {
		return nil, err
	}
	v, err := parse(data)
	if err != nil {
		return nil, err
	}
	f.cur.Store(v)
	f.sum = hashContents(data)
	f.nextCheck.Store(time.Now().Add(interval).UnixNano())
	return f, nil
}

// get returns the current value, first reloading it if the check interval
// has passed and no other goroutine is already checking.
func (f *fileSet[T]) get() *T {
	f.maybeReload()
	return f.cur.Load()
}

func (f *fileSet[T]) maybeReload() {
	now := time.Now().UnixNano()
	if now < f.nextCheck.Load() || !f.mu.TryLock() {
		return
	}
	defer f.mu.Unlock()
	if now < f.nextCheck.Load() {
		return // Another goroutine checked while we were acquiring mu.
	}
	f.reloadLocked()
	f.nextCheck.Store(time.Now().Add(f.interval).UnixNano())
}

func (f *fileSet[T]) reloadLocked() {
	data, err := f.read()
	if err != nil {
		f.failLocked("read:"+err.Error(), err)
		return
	}
	sum := hashContents(data)
	if sum == f.sum {
		// Back to (or still at) the published contents; a later bad
		// content must be reported again.
		f.failKey = ""
		return
	}
	key := "parse:" + hex.EncodeToString(sum[:])
	if key == f.failKey {
		return // Known bad content; do not parse or report it again.
	}
	v, err := f.parse(data)
	if err != nil {
		f.failLocked(key, err)
		return
	}
	f.cur.Store(v)
	f.sum = sum
	f.failKey = ""
	f.metrics.reloads.WithLabelValues(resultSuccess).Inc()
	f.logger.Info("reloaded tls material", "files", f.paths)
}

func (f *fileSet[T]) failLocked(key string, err error) {
	if key == f.failKey {
		return
	}
	f.failKey = key
	f.metrics.reloads.WithLabelValues(resultFailure).Inc()
	f.logger.Error("reload tls material, keeping the previous one", "files", f.paths, "err", err)
}

func (f *fileSet[T]) read() ([][]byte, error) {
	data := make([][]byte, len(f.paths))
	for i, p := range f.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read tls file: %w", err)
		}
		data[i] = b
	}
	return data, nil
}

// hashContents hashes the files length-prefixed, so that moving bytes from one
// file to the next is a change.
func hashContents(data [][]byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, d := range data {
		binary.BigEndian.PutUint64(n[:], uint64(len(d)))
		h.Write(n[:])
		h.Write(d)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

const (
	resultSuccess = "success"
	resultFailure = "failure"
)

type metrics struct {
	reloads *prometheus.CounterVec
}

// newMetrics registers the package's metrics with reg, or reuses the ones a
// previous configuration registered there: a process builds many TLS
// configurations against one registry, so promauto's panic on duplicates
// does not fit.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_tls_reloads_total",
		Help: "Reloads of changed TLS certificates, keys and CAs, by result. A failure keeps the previous material.",
	}, []string{"result"})
	if reg != nil {
		if err := reg.Register(reloads); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("register tls metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("register tls metrics: %w", err)
			}
			reloads = existing
		}
	}
	reloads.WithLabelValues(resultSuccess)
	reloads.WithLabelValues(resultFailure)
	return &metrics{reloads: reloads}, nil
}

func orDiscard(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}
