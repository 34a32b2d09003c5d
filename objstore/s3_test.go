package objstore_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/miniotest"
	"github.com/stratametrics/strata/objstore"
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestS3IsTransient(t *testing.T) {
	bkt, err := objstore.NewS3(objstore.S3Config{Bucket: "blocks", Endpoint: "127.0.0.1:1", Insecure: true}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bkt.Close()) })

	s3err := func(status int, code string) error {
		return fmt.Errorf("get %q: %w", "x", minio.ErrorResponse{StatusCode: status, Code: code})
	}
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: "http://127.0.0.1:1/blocks/x", Err: err} }

	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "SlowDown", err: s3err(503, "SlowDown"), want: true},
		{name: "503 without a code, as HEAD answers", err: s3err(503, "503 Service Unavailable"), want: true},
		{name: "InternalError", err: s3err(500, "InternalError"), want: true},
		{name: "RequestTimeout", err: s3err(400, "RequestTimeout"), want: true},
		{name: "429", err: s3err(429, "TooManyRequests"), want: true},
		{name: "502 from a load balancer", err: s3err(502, "502 Bad Gateway"), want: true},
		{name: "MinIO not initialized", err: s3err(503, "XMinioServerNotInitialized"), want: true},
		{name: "NoSuchKey", err: s3err(404, "NoSuchKey"), want: false},
		{name: "NoSuchBucket", err: s3err(404, "NoSuchBucket"), want: false},
		{name: "AccessDenied", err: s3err(403, "AccessDenied"), want: false},
		{name: "SignatureDoesNotMatch", err: s3err(403, "SignatureDoesNotMatch"), want: false},
		{name: "unknown 4xx", err: s3err(400, "SomethingNew"), want: false},
		{name: "not found", err: fmt.Errorf("get: %w", objstore.ErrNotFound), want: false},
		{name: "invalid name", err: fmt.Errorf("get: %w", objstore.ErrInvalidName), want: false},
		{name: "cancelled", err: urlErr(context.Canceled), want: false},
		{name: "deadline", err: urlErr(context.DeadlineExceeded), want: false},
		{name: "connection refused", err: urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), want: true},
		{name: "connection reset", err: urlErr(fmt.Errorf("read: %w", syscall.ECONNRESET)), want: true},
		{name: "timeout", err: urlErr(timeoutError{}), want: true},
		{name: "server closed the connection", err: urlErr(io.EOF), want: true},
		{name: "truncated body", err: io.ErrUnexpectedEOF, want: true},
		{name: "DNS timeout", err: urlErr(&net.OpError{Op: "dial", Err: &net.DNSError{Err: "timeout", IsTimeout: true}}), want: true},
		{name: "DNS no such host", err: urlErr(&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", IsNotFound: true}}), want: false},
		{name: "unknown certificate authority", err: urlErr(x509.UnknownAuthorityError{}), want: false},
		{name: "certificate verification", err: urlErr(&tls.CertificateVerificationError{Err: errors.New("bad")}), want: false},
		{name: "plain error", err: errors.New("something else"), want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, bkt.IsTransient(tc.err))
		})
	}
}

func TestS3Config(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     objstore.S3Config
		wantErr string
	}{
		{name: "minimal", cfg: objstore.S3Config{Bucket: "blocks", Endpoint: "s3.amazonaws.com"}},
		{name: "session token", cfg: objstore.S3Config{Bucket: "blocks", Endpoint: "e:9000", AccessKey: "a", SecretKey: "s", SessionToken: "t"}},
		{name: "largest part size", cfg: objstore.S3Config{Bucket: "blocks", Endpoint: "e", PartSize: objstore.MaxS3PartSize}},
		{name: "no bucket", cfg: objstore.S3Config{Endpoint: "e"}, wantErr: "bucket is required"},
		{name: "endpoint with path", cfg: objstore.S3Config{Bucket: "blocks", Endpoint: "e:9000/blocks"}, wantErr: "without a path"},
		{name: "secret without access key", cfg: objstore.S3Config{Bucket: "blocks", Endpoint: "e", SecretKey: "s"}, wantErr: "access_key is required"},
		{name: "session token alone", cfg: objstore.S3Config{Bucket: "blocks", Endpoint: "e", SessionToken: "t"}, wantErr: "session_token needs"},
		{name: "part size too large", cfg: objstore.S3Config{Bucket: "blocks", Endpoint: "e", PartSize: objstore.MaxS3PartSize + 1}, wantErr: "part_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				_, err = objstore.NewS3(tc.cfg, nil)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestS3(t *testing.T) {
	srv := miniotest.Start(t)
	cfg := srv.NewBucket(t, "s3-backend")

	t.Run("multipart uploads", func(t *testing.T) {
		small := cfg
		small.PartSize = objstore.MinS3PartSize
		bkt, err := objstore.NewS3(small, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, bkt.Close()) })

		// Random, so that no stretch of it equals another and an upload from
		// the wrong offset shows.
		data := make([]byte, 2*objstore.MinS3PartSize+12345)
		_, _ = rand.NewChaCha8([32]byte{1}).Read(data)
		const skip = 1 << 20
		for _, tc := range []struct {
			name   string
			reader func() io.Reader
			want   []byte
		}{
			{name: "known length", reader: func() io.Reader { return bytes.NewReader(data) }, want: data},
			{name: "unknown length", reader: func() io.Reader { return struct{ io.Reader }{bytes.NewReader(data)} }, want: data},
			{name: "read at, from its position", reader: func() io.Reader {
				r := bytes.NewReader(data)
				_, _ = r.Seek(skip, io.SeekStart)
				return r
			}, want: data[skip:]},
			{name: "file, from its position", reader: func() io.Reader {
				f, err := os.Create(filepath.Join(t.TempDir(), "upload"))
				require.NoError(t, err)
				t.Cleanup(func() { require.NoError(t, f.Close()) })
				_, err = f.Write(data)
				require.NoError(t, err)
				_, err = f.Seek(skip, io.SeekStart)
				require.NoError(t, err)
				return f
			}, want: data[skip:]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				require.NoError(t, bkt.Upload(t.Context(), "multipart", tc.reader()))
				rc, err := bkt.Get(t.Context(), "multipart")
				require.NoError(t, err)
				got, err := io.ReadAll(rc)
				require.NoError(t, err)
				require.NoError(t, rc.Close())
				require.True(t, bytes.Equal(tc.want, got), "got %d bytes, want %d", len(got), len(tc.want))
			})
		}
	})

	t.Run("from the environment", func(t *testing.T) {
		// No keys in the config: the chain finds them in AWS_* variables.
		t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretKey)
		envCfg := cfg
		envCfg.AccessKey, envCfg.SecretKey = "", ""
		bkt, err := objstore.NewS3(envCfg, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, bkt.Close()) })
		require.NoError(t, bkt.Upload(t.Context(), "env", strings.NewReader("x")))
		ok, err := bkt.Exists(t.Context(), "env")
		require.NoError(t, err)
		require.True(t, ok)
	})
	t.Run("wrong secret is permanent", func(t *testing.T) {
		badCfg := cfg
		badCfg.SecretKey = "not-the-secret"
		bkt, err := objstore.NewS3(badCfg, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, bkt.Close()) })
		_, err = bkt.Exists(t.Context(), "env")
		require.Error(t, err)
		require.NotErrorIs(t, err, objstore.ErrNotFound)
		require.False(t, bkt.IsTransient(err), "%v", err)
	})
	t.Run("missing bucket is not a missing object", func(t *testing.T) {
		noBucket := cfg
		noBucket.Bucket = "does-not-exist"
		bkt, err := objstore.NewS3(noBucket, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, bkt.Close()) })
		_, err = bkt.Get(t.Context(), "x")
		require.ErrorContains(t, err, `in bucket "does-not-exist"`)
		require.NotErrorIs(t, err, objstore.ErrNotFound)
		// A HEAD answer has no body; MinIO names the error in a header. Other
		// stores may leave Exists unable to tell a missing bucket from a missing key.
		_, err = bkt.Exists(t.Context(), "x")
		require.Error(t, err)
		require.NotErrorIs(t, err, objstore.ErrNotFound)
		err = bkt.Iter(t.Context(), "", func(string) error { return nil })
		require.Error(t, err)
		require.NotErrorIs(t, err, objstore.ErrNotFound)
	})
}
