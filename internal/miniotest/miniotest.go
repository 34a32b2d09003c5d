// Package miniotest runs a real MinIO server for tests, so that S3 code is
// tested against an S3 implementation and not a mock.
//
// The minio binary must be installed:
//
//	go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
//
// Tests that need it fail, never skip, when it is missing.
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"go.yaml.in/yaml/v3"

	"github.com/stratametrics/strata/internal/syncbuf"
	"github.com/stratametrics/strata/objstore"
)

// InstallCommand installs the MinIO server version the tests are written against.
const InstallCommand = "go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// Region is the region of the test server, MinIO's default.
const Region = "us-east-1"

const (
	startTimeout  = 30 * time.Second
	startAttempts = 3
)

// Server is a MinIO server running for one test, stopped when the test ends.
type Server struct {
	// Endpoint is the host:port of the S3 API, served over plain HTTP.
	Endpoint string
	// AccessKey is the root user.
	AccessKey string
	// SecretKey is the root password.
	SecretKey string
}

// Start runs a MinIO server on loopback ports with its data in a temporary
// directory and waits until it is live. It fails the test if the minio binary
// is missing or the server does not come up. The server is killed, and its
// data removed, when the test ends; its log is printed if the test failed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		t.Fatalf("miniotest: %v; install it with: %s", err, InstallCommand)
	}
	accessKey := "strata-test"
	secretKey := randomHex(t, 16)

	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		// Free ports are found by binding and closing, so another process can
		// take one before MinIO binds it; a failed start is tried again on new ports.
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		consoleAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		srv, err := start(t, bin, addr, consoleAddr, accessKey, secretKey)
		if err == nil {
			return srv
		}
		lastErr = err
		t.Logf("miniotest: start attempt %d: %v", attempt, err)
	}
	t.Fatalf("miniotest: start minio: %v", lastErr)
	return nil
}

func start(t testing.TB, bin, addr, consoleAddr, accessKey, secretKey string) (*Server, error) {
	dir := t.TempDir()
	var logs syncbuf.Buffer
	cmd := exec.Command(bin, "server", dir, "--address", addr, "--console-address", consoleAddr)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+accessKey,
		"MINIO_ROOT_PASSWORD="+secretKey,
		"MINIO_UPDATE=off",
	)
	cmd.Stdout = &logs
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	if err := waitLive(addr, exited); err != nil {
		select {
		case <-exited:
			err = fmt.Errorf("%w: %v", err, waitErr)
		default:
			stop()
		}
		return nil, fmt.Errorf("%w; minio log:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("miniotest: minio log of %s:\n%s", addr, logs.String())
		}
	})
	return &Server{Endpoint: addr, AccessKey: accessKey, SecretKey: secretKey}, nil
}

// waitLive polls the liveness endpoint until it answers 200, the process exits
// or startTimeout passes.
func waitLive(addr string, exited <-chan struct{}) error {
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Second}
	url := "http://" + addr + "/minio/health/live"
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio at %s not live after %s: %w", addr, startTimeout, err)
		}
		select {
		case <-exited:
			return errors.New("minio exited before it was live")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Config returns the configuration of bucket on this server, without creating it.
func (s *Server) Config(bucket string) objstore.S3Config {
	return objstore.S3Config{
		Bucket:    bucket,
		Endpoint:  s.Endpoint,
		Region:    Region,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
		Insecure:  true,
	}
}

// NewBucket creates a bucket named name and returns its configuration. A
// server that is live may not accept requests yet, so creation is retried
// until a deadline.
func (s *Server) NewBucket(t testing.TB, name string) objstore.S3Config {
	t.Helper()
	if err := s3utils.CheckValidBucketNameStrict(name); err != nil {
		t.Fatalf("miniotest: bucket name %q: %v", name, err)
	}
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client, err := minio.New(s.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:    Region,
		Transport: transport,
	})
	if err != nil {
		t.Fatalf("miniotest: create client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		err := client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region})
		if err == nil || minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("miniotest: create bucket %q: %v", name, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return s.Config(name)
}

// NewBucketYAML creates a bucket named name and returns the bucket
// configuration file that objstore.NewBucket reads to open it.
func (s *Server) NewBucketYAML(t testing.TB, name string) []byte {
	t.Helper()
	return ConfigYAML(t, s.NewBucket(t, name))
}

// ConfigYAML returns the bucket configuration file of cfg.
func ConfigYAML(t testing.TB, cfg objstore.S3Config) []byte {
	t.Helper()
	out, err := yaml.Marshal(objstore.BucketConfig{Type: objstore.S3Type, Config: cfg})
	if err != nil {
		t.Fatalf("miniotest: marshal bucket config: %v", err)
	}
	return out
}

// findBinary looks for minio on PATH, then in the bin directories of GOBIN,
// GOPATH (the environment's, then `go env GOPATH`'s) and $HOME/go.
func findBinary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	gopaths := filepath.SplitList(os.Getenv("GOPATH"))
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopaths = append(gopaths, filepath.SplitList(strings.TrimSpace(string(out)))...)
	}
	if home, err := os.UserHomeDir(); err == nil {
		gopaths = append(gopaths, filepath.Join(home, "go"))
	}
	for _, gp := range gopaths {
		if d := filepath.Join(gp, "bin"); gp != "" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "minio")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("minio binary not found on PATH or in %s", strings.Join(dirs, ", "))
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("miniotest: random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}
