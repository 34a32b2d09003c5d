package objstore_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/objstore"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    objstore.BucketConfig
		wantErr string
	}{
		{
			name: "S3 with every field",
			content: `
type: S3
config:
  bucket: blocks
  endpoint: s3.eu-west-1.amazonaws.com
  region: eu-west-1
  access_key: AKIA
  secret_key: secret
  session_token: token
  insecure: false
  insecure_skip_verify: true
  part_size: 16777216
  list_objects_version: v1
`,
			want: objstore.BucketConfig{Type: objstore.S3Type, Config: objstore.S3Config{
				Bucket: "blocks", Endpoint: "s3.eu-west-1.amazonaws.com", Region: "eu-west-1",
				AccessKey: "AKIA", SecretKey: "secret", SessionToken: "token",
				InsecureSkipVerify: true, PartSize: 16 << 20, ListObjectsVersion: "v1",
			}},
		},
		{
			name:    "S3 with credentials from the environment, type in lower case",
			content: "type: s3\nconfig:\n  bucket: blocks\n  endpoint: minio:9000\n  insecure: true\n",
			want: objstore.BucketConfig{Type: objstore.S3Type, Config: objstore.S3Config{
				Bucket: "blocks", Endpoint: "minio:9000", Insecure: true,
			}},
		},
		{
			name:    "FILESYSTEM",
			content: "type: FILESYSTEM\nconfig:\n  directory: ./data\n",
			want:    objstore.BucketConfig{Type: objstore.FilesystemType, Config: objstore.FilesystemConfig{Directory: "./data"}},
		},
		{
			name:    "filesystem in mixed case",
			content: "type: FileSystem\nconfig:\n  directory: /var/strata\n",
			want:    objstore.BucketConfig{Type: objstore.FilesystemType, Config: objstore.FilesystemConfig{Directory: "/var/strata"}},
		},
		{name: "empty", content: "", wantErr: "config is empty"},
		{name: "only a comment", content: "# nothing here\n", wantErr: "config is empty"},
		{name: "missing type", content: "config:\n  directory: ./data\n", wantErr: "type is required"},
		{name: "unknown type", content: "type: GCS\nconfig:\n  bucket: blocks\n", wantErr: `unknown type "GCS"`},
		{name: "unknown top-level field", content: "type: S3\nbucket: blocks\n", wantErr: "field bucket not found"},
		{
			name:    "unknown S3 field",
			content: "type: S3\nconfig:\n  bucket: blocks\n  endpoint: minio:9000\n  acces_key: typo\n",
			wantErr: "line 5: field acces_key not found",
		},
		{
			name:    "S3 field in a FILESYSTEM config",
			content: "type: FILESYSTEM\nconfig:\n  directory: ./data\n  bucket: blocks\n",
			wantErr: "field bucket not found",
		},
		{name: "S3 without config", content: "type: S3\n", wantErr: "bucket is required"},
		{name: "missing bucket", content: "type: S3\nconfig:\n  endpoint: minio:9000\n", wantErr: "bucket is required"},
		{name: "invalid bucket name", content: "type: S3\nconfig:\n  bucket: my..bucket\n  endpoint: minio:9000\n", wantErr: `bucket "my..bucket"`},
		{name: "missing endpoint", content: "type: S3\nconfig:\n  bucket: blocks\n", wantErr: "endpoint is required"},
		{
			name:    "endpoint with a scheme",
			content: "type: S3\nconfig:\n  bucket: blocks\n  endpoint: http://minio:9000\n",
			wantErr: "without a scheme",
		},
		{
			name:    "access key without secret key",
			content: "type: S3\nconfig:\n  bucket: blocks\n  endpoint: minio:9000\n  access_key: AKIA\n",
			wantErr: "secret_key is required",
		},
		{
			name:    "part size too small",
			content: "type: S3\nconfig:\n  bucket: blocks\n  endpoint: minio:9000\n  part_size: 1024\n",
			wantErr: "part_size 1024 is outside",
		},
		{
			name:    "unknown list objects version",
			content: "type: S3\nconfig:\n  bucket: blocks\n  endpoint: minio:9000\n  list_objects_version: v3\n",
			wantErr: `list_objects_version "v3"`,
		},
		{name: "FILESYSTEM without directory", content: "type: FILESYSTEM\nconfig: {}\n", wantErr: "directory is required"},
		{name: "config is not a mapping", content: "type: FILESYSTEM\nconfig: [a, b]\n", wantErr: "cannot unmarshal"},
		{name: "not YAML", content: "type: [S3\n", wantErr: "parse bucket config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := objstore.ParseConfig([]byte(tc.content))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestNewBucket(t *testing.T) {
	fsConfig := []byte("type: FILESYSTEM\nconfig:\n  directory: " + t.TempDir() + "\n")

	t.Run("nil registerer and logger", func(t *testing.T) {
		bkt, err := objstore.NewBucket(t.Context(), fsConfig, nil, nil)
		require.NoError(t, err)
		require.NoError(t, bkt.Close())
	})
	t.Run("buckets sharing a registry", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		other := []byte("type: FILESYSTEM\nconfig:\n  directory: " + t.TempDir() + "\n")
		for _, content := range [][]byte{fsConfig, fsConfig, other} {
			bkt, err := objstore.NewBucket(t.Context(), content, reg, nil)
			require.NoError(t, err)
			require.NoError(t, bkt.Close())
		}
	})
	t.Run("S3 is not contacted", func(t *testing.T) {
		// Nothing listens on port 1; construction must still succeed.
		bkt, err := objstore.NewBucket(t.Context(), []byte("type: S3\nconfig:\n  bucket: blocks\n  endpoint: 127.0.0.1:1\n  insecure: true\n"), nil, nil)
		require.NoError(t, err)
		require.Equal(t, "blocks", bkt.Name())
		require.NoError(t, bkt.Close())
	})
	t.Run("invalid config", func(t *testing.T) {
		_, err := objstore.NewBucket(t.Context(), []byte("type: S3\nconfig: {}\n"), nil, nil)
		require.ErrorContains(t, err, "bucket is required")
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := objstore.NewBucket(ctx, fsConfig, nil, nil)
		require.ErrorIs(t, err, context.Canceled)
	})
}
