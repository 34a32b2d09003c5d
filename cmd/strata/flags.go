package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/objstore"
)

// objstoreFlags are the object storage flags every bucket-using component shares.
type objstoreFlags struct {
	file   string
	inline string
}

func registerObjstoreFlags(cmd *kingpin.CmdClause) *objstoreFlags {
	f := &objstoreFlags{}
	cmd.Flag("objstore.config-file", "Path to the YAML object storage configuration (type: S3 or FILESYSTEM, config: {...}).").
		PlaceHolder("<file>").StringVar(&f.file)
	cmd.Flag("objstore.config", "Object storage configuration as inline YAML; an alternative to --objstore.config-file.").
		PlaceHolder("<yaml>").StringVar(&f.inline)
	return f
}

// content returns the configuration given by either flag, or nil when neither was set.
func (f *objstoreFlags) content() ([]byte, error) {
	switch {
	case f.file != "" && f.inline != "":
		return nil, errors.New("set only one of --objstore.config-file and --objstore.config")
	case f.file != "":
		b, err := os.ReadFile(f.file)
		if err != nil {
			return nil, fmt.Errorf("read object storage configuration: %w", err)
		}
		return b, nil
	case f.inline != "":
		return []byte(f.inline), nil
	}
	return nil, nil
}

// bucket opens the configured bucket, or returns nil when none is configured.
func (f *objstoreFlags) bucket(ctx context.Context, reg prometheus.Registerer, logger *slog.Logger) (objstore.Bucket, error) {
	content, err := f.content()
	if err != nil || content == nil {
		return nil, err
	}
	bkt, err := objstore.NewBucket(ctx, content, reg, logger)
	if err != nil {
		return nil, fmt.Errorf("open bucket: %w", err)
	}
	return bkt, nil
}

// parseLabels parses repeated `name="value"` flags into a sorted label set.
func parseLabels(flags []string) (labels.Labels, error) {
	b := labels.NewScratchBuilder(len(flags))
	seen := map[string]bool{}
	for _, f := range flags {
		name, quoted, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return labels.EmptyLabels(), fmt.Errorf("label %q: want name=\"value\"", f)
		}
		value, err := strconv.Unquote(quoted)
		if err != nil {
			return labels.EmptyLabels(), fmt.Errorf("label %q: the value must be a double-quoted string: %w", f, err)
		}
		if !model.LegacyValidation.IsValidLabelName(name) || value == "" {
			return labels.EmptyLabels(), fmt.Errorf("label %q: invalid name or empty value", f)
		}
		if seen[name] {
			return labels.EmptyLabels(), fmt.Errorf("label %q given twice", name)
		}
		seen[name] = true
		b.Add(name, value)
	}
	b.Sort()
	return b.Labels(), nil
}

// commandOf is the command of main that register registers and run runs.
func commandOf[C any](register func(*kingpin.Application) (*kingpin.CmdClause, C), run func(C, *slog.Logger, *prometheus.Registry) error) command {
	return func(app *kingpin.Application) (string, func(*slog.Logger, *prometheus.Registry) error) {
		cmd, c := register(app)
		return cmd.FullCommand(), func(logger *slog.Logger, reg *prometheus.Registry) error { return run(c, logger, reg) }
	}
}

// parseCommandArgs registers one subcommand with register on a fresh
// application and parses its flags from args, with every default applied:
// strata up builds its parts with it, and tests check the flags with it.
func parseCommandArgs[C any](register func(*kingpin.Application) (*kingpin.CmdClause, C), args []string) (C, error) {
	app := kingpin.New("strata", "")
	cmd, c := register(app)
	if _, err := app.Parse(append([]string{cmd.FullCommand()}, args...)); err != nil {
		var zero C
		return zero, fmt.Errorf("%s flags: %w", cmd.FullCommand(), err)
	}
	return c, nil
}
