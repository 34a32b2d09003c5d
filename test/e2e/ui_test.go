package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
)

// inCI reports whether the tests run in CI (.ci/run sets CI=true), where
// every dependency must be installed and nothing may skip for lack of one.
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// requireBrowserTools returns node and chromium, and the directory of the
// browser test script with its node_modules. Outside CI it skips the test
// when one is missing; in CI that fails it.
func requireBrowserTools(t *testing.T) (node, chromium, dir string) {
	t.Helper()
	missing := func(what string) {
		msg := what + " is missing: run .ci/install-deps (it installs Debian's chromium, node and npm, and runs npm ci in test/browser)"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var err error
	if node, err = exec.LookPath("node"); err != nil {
		missing("node")
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		if chromium, err = exec.LookPath("chromium"); err != nil {
			missing("chromium")
		}
	}
	dir, err = filepath.Abs(filepath.Join("..", "browser"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		missing("test/browser/node_modules/playwright-core")
	}
	return node, chromium, dir
}

// TestWebUI runs test/browser/ui.test.mjs in Debian's chromium against a real
// strata up: it types a query and sees the graph drawn and the table, checks
// completion, the toggles and shared URLs, draws 500 series of 1000 points
// without freezing the page, opens every cluster page and the details of a
// block, and fails on any console error. Screenshots go to
// $STRATA_TEST_ARTIFACTS, or a temporary directory that is logged.
func TestWebUI(t *testing.T) {
	node, chromium, dir := requireBrowserTools(t)

	// A block in the bucket before strata starts, for the blocks page.
	dataDir := t.TempDir()
	bkt, err := objstore.NewFilesystem(filepath.Join(dataDir, "bucket"))
	require.NoError(t, err)
	blockDir := t.TempDir()
	maxt := time.Now().Add(-2 * time.Hour).Truncate(2 * time.Hour).UnixMilli()
	mint := maxt - 2*time.Hour.Milliseconds()
	id := blocktest.Create(t, blockDir, mint, maxt, 3)
	meta, err := block.ReadMetaFromDir(filepath.Join(blockDir, id.String()))
	require.NoError(t, err)
	meta.Thanos.Labels = map[string]string{"tenant_id": "browser-test"}
	meta.Thanos.Source = block.SourceTest
	require.NoError(t, block.Upload(context.Background(), nil, bkt, filepath.Join(blockDir, id.String()), meta))
	require.NoError(t, bkt.Close())

	p, httpAddr := startUpOnFreePorts(t, "--data-dir="+dataDir, "--self-scrape-interval=1s")
	baseURL := "http://" + httpAddr
	const metric = "go_goroutines"
	require.Eventually(t, func() bool { return instantSeries(t, baseURL, metric, true) > 0 },
		time.Minute, 200*time.Millisecond, "strata up stores no %s of its own", metric)

	artifacts := os.Getenv("STRATA_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts, err = os.MkdirTemp("", "strata-webui-")
		require.NoError(t, err)
	} else {
		artifacts = filepath.Join(artifacts, t.Name())
	}
	t.Logf("screenshots in %s", artifacts)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "ui.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"STRATA_URL="+baseURL,
		"STRATA_TEST_ARTIFACTS="+artifacts,
		"CHROMIUM="+chromium,
		"STRATA_METRIC="+metric,
		"STRATA_EXPECT_BLOCK="+strconv.Itoa(1),
	)
	out, err := cmd.CombinedOutput()
	t.Logf("browser test output:\n%s", out)
	require.NoError(t, err, "the browser test failed; screenshots in %s", artifacts)
	require.NoError(t, p.stop(t, syscall.SIGTERM, time.Minute))
}
