package objstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Multipart part size limits of S3, and the part size strata uses by default.
const (
	// DefaultS3PartSize is the multipart part size used when S3Config.PartSize is 0.
	// An upload of unknown length buffers one part in memory, so the default
	// trades request count for memory: minio-go's own default for unknown
	// lengths is over 500MiB per upload.
	DefaultS3PartSize = 64 << 20
	// MinS3PartSize is the smallest part S3 accepts, except for the last one.
	MinS3PartSize = 5 << 20
	// MaxS3PartSize is the largest part S3 accepts.
	MaxS3PartSize = 5 << 30
)

// S3Config configures a bucket in Amazon S3 or an S3-compatible store such as MinIO.
type S3Config struct {
	// Bucket is the name of the bucket. It must already exist.
	Bucket string `yaml:"bucket"`
	// Endpoint is the host and optional port of the S3 API, without a scheme,
	// for example "s3.eu-west-1.amazonaws.com" or "minio.example:9000".
	Endpoint string `yaml:"endpoint"`
	// Region is the bucket's region. When empty, it is looked up once per bucket.
	Region string `yaml:"region,omitempty"`
	// AccessKey is the static access key. When empty, credentials come from the
	// environment (AWS_* or MINIO_* variables), the AWS credentials file, or IAM.
	AccessKey string `yaml:"access_key,omitempty"`
	// SecretKey is the static secret key that goes with AccessKey.
	SecretKey string `yaml:"secret_key,omitempty"`
	// SessionToken is the optional session token of temporary static credentials.
	SessionToken string `yaml:"session_token,omitempty"`
	// Insecure talks plain HTTP instead of HTTPS.
	Insecure bool `yaml:"insecure,omitempty"`
	// InsecureSkipVerify accepts any TLS certificate. Use it only for testing.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty"`
	// PartSize is the multipart part size in bytes; 0 means DefaultS3PartSize.
	PartSize uint64 `yaml:"part_size,omitempty"`
	// ListObjectsVersion selects the listing API, "v1" or "v2"; empty means "v2".
	// Some S3-compatible stores only implement v1.
	ListObjectsVersion string `yaml:"list_objects_version,omitempty"`
}

// Validate reports whether the configuration can be used, naming the first problem.
func (c S3Config) Validate() error {
	switch {
	case c.Bucket == "":
		return errors.New("s3 bucket: bucket is required")
	case c.Endpoint == "":
		return errors.New("s3 bucket: endpoint is required (for AWS use s3.<region>.amazonaws.com)")
	case strings.Contains(c.Endpoint, "://"):
		return fmt.Errorf("s3 bucket: endpoint %q must be host[:port] without a scheme; set insecure: true for plain http", c.Endpoint)
	case strings.ContainsAny(c.Endpoint, "/?#"):
		return fmt.Errorf("s3 bucket: endpoint %q must be host[:port] without a path", c.Endpoint)
	case c.AccessKey != "" && c.SecretKey == "":
		return errors.New("s3 bucket: secret_key is required with access_key")
	case c.AccessKey == "" && c.SecretKey != "":
		return errors.New("s3 bucket: access_key is required with secret_key")
	case c.SessionToken != "" && c.AccessKey == "":
		return errors.New("s3 bucket: session_token needs access_key and secret_key")
	case c.PartSize != 0 && (c.PartSize < MinS3PartSize || c.PartSize > MaxS3PartSize):
		return fmt.Errorf("s3 bucket: part_size %d is outside [%d, %d]", c.PartSize, MinS3PartSize, MaxS3PartSize)
	}
	if err := s3utils.CheckValidBucketName(c.Bucket); err != nil {
		return fmt.Errorf("s3 bucket: bucket %q: %w", c.Bucket, err)
	}
	switch c.ListObjectsVersion {
	case "", "v1", "v2":
	default:
		return fmt.Errorf("s3 bucket: list_objects_version %q is not one of v1, v2", c.ListObjectsVersion)
	}
	return nil
}

// Compile-time checks that the backend keeps the contracts the wrappers rely on.
var (
	_ Bucket              = (*S3)(nil)
	_ TransientClassifier = (*S3)(nil)
	_ Bucket              = (*Filesystem)(nil)
)

// S3 is a Bucket in S3 or an S3-compatible store.
//
// S3 does not retry: minio-go's own retries are switched off so that retries,
// their backoff and their metrics live in one place, the wrapper of
// NewRetryingBucket, which classifies errors with IsTransient.
type S3 struct {
	client    *minio.Client
	core      minio.Core
	transport *http.Transport
	bucket    string
	partSize  uint64
	listV1    bool
}

// NewS3 returns a bucket for cfg. It does not contact the store: a missing
// bucket or bad credentials show up on the first operation.
func NewS3(cfg S3Config, logger *slog.Logger) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Uploads and downloads run in parallel against one host; the default of 2
	// idle connections per host would make most requests dial.
	transport.MaxIdleConns = 256
	transport.MaxIdleConnsPerHost = 256
	// A store that accepts a request and never answers must not hang a caller
	// that has no deadline.
	transport.ResponseHeaderTimeout = 2 * time.Minute
	if cfg.InsecureSkipVerify {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // Explicitly requested by configuration.
	}

	if cfg.InsecureSkipVerify && !cfg.Insecure {
		logger.Warn("s3 tls certificate verification is disabled", "bucket", cfg.Bucket, "endpoint", cfg.Endpoint)
	}

	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	} else {
		logger.Info("s3 credentials come from the environment, the AWS credentials file or IAM", "bucket", cfg.Bucket)
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.EnvMinio{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{Client: &http.Client{Transport: transport}},
		})
	}

	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      creds,
		Secure:     !cfg.Insecure,
		Transport:  transport,
		Region:     cfg.Region,
		MaxRetries: 1, // No retries inside minio-go; see the S3 type.
	})
	if err != nil {
		return nil, fmt.Errorf("create s3 client for %q: %w", cfg.Endpoint, err)
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultS3PartSize
	}
	return &S3{
		client:    client,
		core:      minio.Core{Client: client},
		transport: transport,
		bucket:    cfg.Bucket,
		partSize:  partSize,
		listV1:    cfg.ListObjectsVersion == "v1",
	}, nil
}

// Name implements Bucket.
func (b *S3) Name() string { return b.bucket }

// Close implements Bucket. It closes idle connections; requests in flight finish.
func (b *S3) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}

// Iter implements BucketReader. A non-recursive listing is collected and sorted
// before f is called, because S3 returns a page's objects and its common
// prefixes as two separately sorted lists. A recursive listing has no common
// prefixes, arrives in key order, and is streamed.
func (b *S3) Iter(ctx context.Context, dir string, f func(string) error, opts ...IterOption) error {
	d, err := cleanName(dir, true)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	prefix := ""
	if d != "" {
		prefix = d + DirDelim
	}
	params := ApplyIterOptions(opts...)

	// Cancelling stops the listing when f returns early.
	listCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	listing := b.client.ListObjectsIter(listCtx, b.bucket, minio.ListObjectsOptions{
		Prefix:    prefix,
		Recursive: params.Recursive,
		UseV1:     b.listV1,
	})

	if params.Recursive {
		for obj := range listing {
			if obj.Err != nil {
				return b.wrap("list", dir, obj.Err)
			}
			// Keys ending in "/" are directory markers made by other tools, not objects.
			if strings.HasSuffix(obj.Key, DirDelim) {
				continue
			}
			if err := f(obj.Key); err != nil {
				return err
			}
		}
		return ctx.Err()
	}

	var names []string
	for obj := range listing {
		if obj.Err != nil {
			return b.wrap("list", dir, obj.Err)
		}
		// A marker object named like the directory itself is not an entry of it.
		// Other keys ending in "/" are the common prefixes, the sub-directories.
		if obj.Key == prefix {
			continue
		}
		names = append(names, obj.Key)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(n); err != nil {
			return err
		}
	}
	return nil
}

// Get implements BucketReader.
func (b *S3) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	return b.GetRange(ctx, name, 0, -1)
}

// GetRange implements BucketReader. The request is made before GetRange
// returns, so a missing object is reported here and not on the first Read.
// An offset at or past the end of the object yields an empty reader, as a
// read past the end of a file does.
func (b *S3) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	key, err := cleanName(name, false)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("get range of %q: negative offset %d", name, off)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if length == 0 {
		// S3 has no empty range; the object must still exist.
		if _, err := b.Attributes(ctx, name); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}

	var opts minio.GetObjectOptions
	switch {
	case length > 0 && length <= math.MaxInt64-off:
		err = opts.SetRange(off, off+length-1)
	case off > 0:
		err = opts.SetRange(off, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("get range of %q: %w", name, err)
	}
	rc, _, _, err := b.core.GetObject(ctx, b.bucket, key, opts)
	if err != nil {
		if errorCode(err) == minio.InvalidRange {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, b.wrap("get", name, err)
	}
	return rc, nil
}

// Exists implements BucketReader.
func (b *S3) Exists(ctx context.Context, name string) (bool, error) {
	if _, err := b.Attributes(ctx, name); err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// Attributes implements BucketReader.
func (b *S3) Attributes(ctx context.Context, name string) (ObjectAttributes, error) {
	key, err := cleanName(name, false)
	if err != nil {
		return ObjectAttributes{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectAttributes{}, err
	}
	info, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectAttributes{}, b.wrap("stat", name, err)
	}
	return ObjectAttributes{Size: info.Size, LastModified: info.LastModified}, nil
}

// Upload implements Bucket. The length of r is taken from a Len method or by
// seeking when r has them, so that small objects go up in one request; a reader
// of unknown length is sent as a multipart upload, buffering one part at a time.
func (b *S3) Upload(ctx context.Context, name string, r io.Reader) error {
	key, err := cleanName(name, false)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	body, size, err := sizedReader(r)
	if err != nil {
		return fmt.Errorf("upload %q: %w", name, err)
	}
	_, err = b.client.PutObject(ctx, b.bucket, key, body, size, minio.PutObjectOptions{
		PartSize:    b.partSize,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		return b.wrap("upload", name, err)
	}
	return nil
}

// sizedReader returns a reader over the rest of r and its length, or -1 when
// the length is unknown.
func sizedReader(r io.Reader) (io.Reader, int64, error) {
	// Seeking comes first: a bytes.Reader has a Len too, but minio-go uploads
	// the parts of a ReaderAt by absolute offset, which would ignore the
	// current position; a section reader makes the offsets relative.
	if s, ok := r.(io.Seeker); ok {
		// A pipe behind an *os.File is a Seeker that cannot seek; that is not
		// an error, the length is just unknown.
		if cur, err := s.Seek(0, io.SeekCurrent); err == nil {
			end, err := s.Seek(0, io.SeekEnd)
			if err != nil {
				return nil, 0, fmt.Errorf("seek to end: %w", err)
			}
			if _, err := s.Seek(cur, io.SeekStart); err != nil {
				return nil, 0, fmt.Errorf("seek back: %w", err)
			}
			size := max(end-cur, 0)
			if ra, ok := r.(io.ReaderAt); ok {
				return io.NewSectionReader(ra, cur, size), size, nil
			}
			return r, size, nil
		}
	}
	if l, ok := r.(interface{ Len() int }); ok {
		return r, int64(l.Len()), nil
	}
	return r, -1, nil
}

// Delete implements Bucket. S3 deletes absent keys without complaint, so the
// object is looked up first to report ErrNotFound; an object deleted by someone
// else between the two requests is reported as deleted.
func (b *S3) Delete(ctx context.Context, name string) error {
	key, err := cleanName(name, false)
	if err != nil {
		return err
	}
	if _, err := b.Attributes(ctx, name); err != nil {
		return err
	}
	if err := b.client.RemoveObject(ctx, b.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return b.wrap("delete", name, err)
	}
	return nil
}

// wrap adds the action and object name to err, mapping a missing key to ErrNotFound.
func (b *S3) wrap(action, name string, err error) error {
	if isS3NotFound(err) {
		return fmt.Errorf("%s %q: %w", action, name, ErrNotFound)
	}
	return fmt.Errorf("%s %q in bucket %q: %w", action, name, b.bucket, err)
}

func errorCode(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return ""
}

// isS3NotFound reports whether err says the key does not exist. A missing
// bucket is a configuration error, never "object not found".
func isS3NotFound(err error) bool {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return false
	}
	if resp.Code == minio.NoSuchKey {
		return true
	}
	return resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket
}

// transientS3Code reports whether an S3 error code is worth another attempt,
// and whether the code is one it knows at all.
func transientS3Code(code string) (transient, known bool) {
	switch code {
	case "SlowDown", "SlowDownRead", "SlowDownWrite",
		"Throttling", "ThrottlingException", "RequestThrottled", "RequestLimitExceeded",
		"InternalError", "ServiceUnavailable", "RequestTimeout", "OperationAborted",
		"XMinioServerNotInitialized", "XMinioReadQuorum", "XMinioWriteQuorum",
		"XMinioBackendDown", "XMinioServerTimedOut",
		// Refreshable credentials (IAM, STS) are fetched again on the next attempt.
		"ExpiredToken", "ExpiredTokenException":
		return true, true
	case minio.NoSuchKey, minio.NoSuchBucket, minio.AccessDenied, minio.InvalidRange,
		"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidArgument", "InvalidRequest",
		"EntityTooLarge", "EntityTooSmall", "XMinioStorageFull", "NotImplemented":
		return false, true
	}
	return false, false
}

// IsTransient reports whether err is a failure that a later attempt of the same
// request may not see: throttling (SlowDown, 429), server errors (5xx,
// InternalError), timeouts and network errors. Missing objects, invalid names,
// cancelled contexts, authentication and TLS errors are permanent.
// NewRetryingBucket uses it through the TransientClassifier interface.
func (b *S3) IsTransient(err error) bool {
	if err == nil ||
		errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrInvalidName) ||
		errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.Code != "" || resp.StatusCode != 0) {
		if transient, known := transientS3Code(resp.Code); known {
			return transient
		}
		return resp.StatusCode >= 500 ||
			resp.StatusCode == http.StatusTooManyRequests ||
			resp.StatusCode == http.StatusRequestTimeout
	}

	// *url.Error wraps everything the HTTP client returns and claims to be a
	// net.Error itself; what matters is the error beneath it.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		invalidCert      x509.CertificateInvalidError
		hostname         x509.HostnameError
		tlsRecord        tls.RecordHeaderError
		tlsVerify        *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownAuthority) || errors.As(err, &invalidCert) ||
		errors.As(err, &hostname) || errors.As(err, &tlsRecord) || errors.As(err, &tlsVerify) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || // A reused connection closed by the server.
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE)
}
