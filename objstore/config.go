package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// BucketType names a backend in a bucket configuration.
type BucketType string

// The backends a bucket configuration can select. The type is matched without
// regard to case.
const (
	// S3Type selects S3 or an S3-compatible store; its config is an S3Config.
	S3Type BucketType = "S3"
	// FilesystemType selects a local directory; its config is a FilesystemConfig.
	FilesystemType BucketType = "FILESYSTEM"
)

// BucketConfig is the bucket configuration file, in the shape Thanos uses:
//
//	type: S3
//	config:
//	  bucket: blocks
//	  endpoint: s3.eu-west-1.amazonaws.com
//
// After ParseConfig, Config holds an S3Config or a FilesystemConfig matching
// Type. To write a configuration, set Config to either and marshal with yaml.
type BucketConfig struct {
	// Type selects the backend.
	Type BucketType `yaml:"type"`
	// Config is the backend's own configuration.
	Config any `yaml:"config"`
}

// ParseConfig decodes and validates a bucket configuration. Decoding is
// strict: unknown fields, at the top or in config, are errors.
func ParseConfig(content []byte) (BucketConfig, error) {
	if len(bytes.TrimSpace(content)) == 0 {
		return BucketConfig{}, errors.New("parse bucket config: config is empty")
	}
	// First pass: the type, and no unknown top-level fields.
	var head struct {
		Type   string    `yaml:"type"`
		Config yaml.Node `yaml:"config"`
	}
	if err := decodeStrict(content, &head); err != nil {
		return BucketConfig{}, fmt.Errorf("parse bucket config: %w", err)
	}
	typ := BucketType(strings.ToUpper(strings.TrimSpace(head.Type)))

	// Second pass over the whole document, so that errors carry the line
	// numbers of the file and not of a re-encoded config section.
	var cfg interface{ Validate() error }
	switch typ {
	case S3Type:
		var doc struct {
			Type   string   `yaml:"type"`
			Config S3Config `yaml:"config"`
		}
		if err := decodeStrict(content, &doc); err != nil {
			return BucketConfig{}, fmt.Errorf("parse S3 bucket config: %w", err)
		}
		cfg = doc.Config
	case FilesystemType:
		var doc struct {
			Type   string           `yaml:"type"`
			Config FilesystemConfig `yaml:"config"`
		}
		if err := decodeStrict(content, &doc); err != nil {
			return BucketConfig{}, fmt.Errorf("parse FILESYSTEM bucket config: %w", err)
		}
		cfg = doc.Config
	case "":
		return BucketConfig{}, fmt.Errorf("parse bucket config: type is required, one of %s, %s", S3Type, FilesystemType)
	default:
		return BucketConfig{}, fmt.Errorf("parse bucket config: unknown type %q, want one of %s, %s", head.Type, S3Type, FilesystemType)
	}
	if err := cfg.Validate(); err != nil {
		return BucketConfig{}, fmt.Errorf("invalid bucket config: %w", err)
	}
	return BucketConfig{Type: typ, Config: cfg}, nil
}

func decodeStrict(content []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	dec.KnownFields(true)
	err := dec.Decode(v)
	var typeErr *yaml.TypeError
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("config is empty")
	case errors.As(err, &typeErr):
		// One line per problem, without yaml's multi-line framing or the Go
		// types of the document (a field name is enough to find a typo).
		msgs := make([]string, len(typeErr.Errors))
		for i, m := range typeErr.Errors {
			if j := strings.Index(m, " in type "); j >= 0 {
				m = m[:j]
			}
			msgs[i] = m
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

// NewBucket opens the bucket described by a YAML configuration (see
// BucketConfig), wrapped with the retries of DefaultRetryOptions and with the
// metrics of NewInstrumentedBucket, registered with reg. A nil reg or logger
// works. No backend talks to the store here; ctx only stops the call early.
func NewBucket(ctx context.Context, content []byte, reg prometheus.Registerer, logger *slog.Logger) (Bucket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := ParseConfig(content)
	if err != nil {
		return nil, err
	}
	var bkt Bucket
	switch c := cfg.Config.(type) {
	case S3Config:
		bkt, err = NewS3(c, logger)
	case FilesystemConfig:
		bkt, err = NewFilesystem(c.Directory)
	default:
		err = fmt.Errorf("bucket config of type %T is not supported", c)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s bucket: %w", cfg.Type, err)
	}
	bkt = NewRetryingBucket(bkt, DefaultRetryOptions(), reg, logger)
	return NewInstrumentedBucket(bkt, reg), nil
}
