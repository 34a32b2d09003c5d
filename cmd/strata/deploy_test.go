package main

// The tests of deploy/: every Kubernetes manifest decodes strictly into the
// Kubernetes API types, the kustomize overlays build, every strata command
// line in them and in the compose file is accepted by strata's own flag
// parser, and the ports and probes are the ones those flags open. They live
// in package main because that is where the flags are registered.

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/stratametrics/strata/ruler"
)

const deployDir = "../../deploy"

// overlays are the kustomizations a user applies.
var overlays = []string{"overlays/single-zone", "overlays/three-zones"}

// decodeObject decodes one Kubernetes object strictly (unknown or duplicate
// fields fail) into its API type.
func decodeObject(doc []byte) (any, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := k8syaml.Unmarshal(doc, &meta); err != nil {
		return nil, err
	}
	var obj any
	switch meta.APIVersion + " " + meta.Kind {
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 Secret":
		obj = &corev1.Secret{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	default:
		return nil, fmt.Errorf("unexpected kind %q of API version %q", meta.Kind, meta.APIVersion)
	}
	if err := k8syaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", meta.Kind, err)
	}
	return obj, nil
}

// splitYAML splits a multi-document YAML file.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestDeployManifestsDecodeStrictly(t *testing.T) {
	root := filepath.Join(deployDir, "kubernetes")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" {
			return err
		}
		t.Run(strings.TrimPrefix(path, root+"/"), func(t *testing.T) {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			switch {
			case filepath.Base(path) == "kustomization.yaml":
				var k types.Kustomization
				require.NoError(t, k8syaml.UnmarshalStrict(b, &k))
				require.Contains(t, []string{"Kustomization", "Component"}, k.Kind)
			case filepath.Base(filepath.Dir(path)) == "rules":
				// The ruler's own loader: Prometheus' checks plus strata's.
				files, err := ruler.LoadFiles([]string{path}, nil, slog.New(slog.DiscardHandler))
				require.NoError(t, err)
				require.Len(t, files, 1)
			default:
				docs := splitYAML(b)
				require.NotEmpty(t, docs)
				for _, doc := range docs {
					_, err := decodeObject(doc)
					require.NoError(t, err)
				}
			}
			n++
		})
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, n, 10, "the manifests were not found")
}

// buildKustomization runs kustomize on the directory dir of deploy/kubernetes
// and decodes every resulting object strictly.
func buildKustomization(t *testing.T, dir string) []any {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	abs, err := filepath.Abs(filepath.Join(deployDir, "kubernetes", dir))
	require.NoError(t, err)
	res, err := k.Run(filesys.MakeFsOnDisk(), abs)
	require.NoError(t, err, "kustomize build %s", dir)
	var objs []any
	for _, r := range res.Resources() {
		b, err := r.AsYAML()
		require.NoError(t, err)
		obj, err := decodeObject(b)
		require.NoError(t, err, "%s of kustomize build %s", r.CurId(), dir)
		objs = append(objs, obj)
	}
	return objs
}

// strataContainer is a strata command line of a workload, with its ports
// and probes.
type strataContainer struct {
	where     string
	args      []string
	container *corev1.Container
	podLabels map[string]string
}

func strataContainers(objs []any) []strataContainer {
	var out []strataContainer
	add := func(kind, name string, tmpl corev1.PodTemplateSpec) {
		for i := range tmpl.Spec.Containers {
			c := &tmpl.Spec.Containers[i]
			if strings.Contains(c.Image, "strata") {
				out = append(out, strataContainer{where: kind + "/" + name, args: c.Args, container: c, podLabels: tmpl.Labels})
			}
		}
	}
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.StatefulSet:
			add("StatefulSet", o.Name, o.Spec.Template)
		case *appsv1.Deployment:
			add("Deployment", o.Name, o.Spec.Template)
		}
	}
	return out
}

// parsedCommand is a strata command line parsed by strata's own parser.
type parsedCommand struct {
	name string
	// listen holds the port of every listening address flag, by flag name,
	// whether it was given or defaulted.
	listen map[string]int
	flags  map[string]string
}

// expandEnv replaces Kubernetes' $(VAR) references with example values, as
// the kubelet would with the pod's.
func expandEnv(arg string) string {
	return regexp.MustCompile(`\$\(([A-Z_]+)\)`).ReplaceAllStringFunc(arg, func(m string) string {
		switch m {
		case "$(POD_IP)":
			return "10.1.2.3"
		default:
			return "strata-example-0"
		}
	})
}

// isListenFlag reports whether the flag names an address a server listens on.
func isListenFlag(name string) bool {
	return strings.HasSuffix(name, "address") && !strings.Contains(name, "advertise")
}

// parseStrataArgs parses args, a strata command line without the program
// name, with every command and flag strata registers.
func parseStrataArgs(args []string) (*parsedCommand, error) {
	app := kingpin.New("strata", "")
	app.Flag("log.level", "").Default("info").Enum("debug", "info", "warn", "error")
	app.Flag("log.format", "").Default("logfmt").Enum("logfmt", "json")
	app.Terminate(nil)
	registerCommands(app)
	expanded := make([]string, len(args))
	for i, a := range args {
		expanded[i] = expandEnv(a)
	}
	name, err := app.Parse(expanded)
	if err != nil {
		return nil, err
	}
	cmd := app.GetCommand(strings.Fields(name)[0])
	for _, sub := range strings.Fields(name)[1:] {
		cmd = cmd.GetCommand(sub)
	}
	p := &parsedCommand{name: name, listen: map[string]int{}, flags: map[string]string{}}
	for _, f := range cmd.Model().Flags {
		p.flags[f.Name] = f.String()
		if !isListenFlag(f.Name) || f.String() == "" {
			continue
		}
		_, port, err := net.SplitHostPort(f.String())
		if err != nil {
			return nil, fmt.Errorf("--%s=%s: %w", f.Name, f.String(), err)
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("--%s=%s: %w", f.Name, f.String(), err)
		}
		p.listen[f.Name] = n
	}
	return p, nil
}

func TestDeployParseStrataArgs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"receive", "--http-address=:1234"}},
		{args: []string{"receive", "--htp-address=:1234"}, wantErr: "unknown long flag '--htp-address'"},
		{args: []string{"recieve"}, wantErr: "expected command"},
		{args: []string{"compact", "--retention.resolution-raw=ten days"}, wantErr: "not a valid duration"},
		{args: []string{"tools", "bucket", "ls", "--output=json"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			p, err := parseStrataArgs(tc.args)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.args[0] == "receive" {
				require.Equal(t, map[string]int{"http-address": 1234, "remote-write.address": 19291, "grpc-address": 10901, "cluster.address": 7946}, p.listen)
			}
		})
	}
}

// checkContainer checks a strata container: its command line parses, its
// ports are exactly the ports it listens on, and its probes ask the HTTP
// port for /-/healthy and /-/ready.
func checkContainer(t *testing.T, c strataContainer) *parsedCommand {
	t.Helper()
	p, err := parseStrataArgs(c.args)
	require.NoError(t, err, "%s: strata %s", c.where, strings.Join(c.args, " "))
	ports := map[int]bool{}
	byName := map[string]int{}
	for _, cp := range c.container.Ports {
		ports[int(cp.ContainerPort)] = true
		byName[cp.Name] = int(cp.ContainerPort)
	}
	want := map[int]bool{}
	for _, port := range p.listen {
		want[port] = true
	}
	require.Equal(t, want, ports, "%s: container ports differ from the ports of %v", c.where, p.listen)

	httpPort, ok := p.listen["http-address"]
	require.True(t, ok, "%s: no HTTP server", c.where)
	probePort := func(what string, pr *corev1.Probe) int {
		require.NotNil(t, pr, "%s: no %s probe", c.where, what)
		require.NotNil(t, pr.HTTPGet, "%s: the %s probe is not an HTTP GET", c.where, what)
		port := pr.HTTPGet.Port
		if port.Type == intstr.String {
			n, ok := byName[port.StrVal]
			require.True(t, ok, "%s: the %s probe's port %q is no container port", c.where, what, port.StrVal)
			return n
		}
		return port.IntValue()
	}
	require.Equal(t, httpPort, probePort("readiness", c.container.ReadinessProbe), c.where)
	require.Equal(t, "/-/ready", c.container.ReadinessProbe.HTTPGet.Path, c.where)
	require.Equal(t, httpPort, probePort("liveness", c.container.LivenessProbe), c.where)
	require.Equal(t, "/-/healthy", c.container.LivenessProbe.HTTPGet.Path, c.where)
	if c.container.StartupProbe != nil {
		require.Equal(t, httpPort, probePort("startup", c.container.StartupProbe), c.where)
		require.Equal(t, "/-/healthy", c.container.StartupProbe.HTTPGet.Path, c.where)
	}
	require.NotEmpty(t, c.container.Resources.Requests, "%s: no resource requests", c.where)
	return p
}

func TestDeployOverlays(t *testing.T) {
	for _, dir := range []string{"base", "receivers"} {
		t.Run(dir, func(t *testing.T) { require.NotEmpty(t, buildKustomization(t, dir)) })
	}
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			objs := buildKustomization(t, dir)
			containers := strataContainers(objs)
			commands := map[string]int{}
			var rwTLS bool
			var rwURLs []string
			var zones []string
			for _, c := range containers {
				p := checkContainer(t, c)
				commands[p.name]++
				if p.name == "receive" {
					rwTLS = p.flags["remote-write.tls-cert"] != ""
					zones = append(zones, p.flags["receive.zone"])
				}
				if u := p.flags["remote-write.url"]; u != "" {
					rwURLs = append(rwURLs, u)
				}
			}
			require.Equal(t, map[string]int{"receive": commands["receive"], "query": 1, "query-frontend": 1, "store": 1, "compact": 1, "rule": 1}, commands)
			// The writers' scheme follows the receivers' TLS.
			for _, u := range rwURLs {
				require.Equal(t, rwTLS, strings.HasPrefix(u, "https://"), "ruler writes to %s", u)
			}
			if dir == "overlays/three-zones" {
				slices.Sort(zones)
				require.Equal(t, []string{"a", "b", "c"}, zones)
			}

			// Every Service selects pods that have the ports it targets, and
			// the compactor is a singleton.
			for _, o := range objs {
				switch o := o.(type) {
				case *corev1.Service:
					var matched []strataContainer
					for _, c := range containers {
						if selects(o.Spec.Selector, c.podLabels) {
							matched = append(matched, c)
						}
					}
					require.NotEmpty(t, matched, "Service %s selects no strata pod", o.Name)
					for _, sp := range o.Spec.Ports {
						for _, c := range matched {
							found := false
							for _, cp := range c.container.Ports {
								if cp.Name == sp.TargetPort.StrVal && cp.ContainerPort == sp.Port && cp.Protocol == sp.Protocol {
									found = true
								}
							}
							require.True(t, found, "Service %s port %s: %s has no port %q numbered %d", o.Name, sp.Name, c.where, sp.TargetPort.StrVal, sp.Port)
						}
					}
				case *appsv1.StatefulSet:
					if o.Name == "strata-compact" {
						require.Equal(t, int32(1), *o.Spec.Replicas)
					}
				case *policyv1.PodDisruptionBudget:
					n := 0
					for _, c := range containers {
						if selects(o.Spec.Selector.MatchLabels, c.podLabels) {
							n++
						}
					}
					require.Equal(t, commands["receive"], n, "PodDisruptionBudget %s covers every receiver", o.Name)
				}
			}
		})
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// composeFile is the part of the Compose specification deploy/compose.yaml
// uses; decoding it with unknown fields refused keeps the file within it.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       map[string]string `yaml:"build"`
		Restart     string            `yaml:"restart"`
		Hostname    string            `yaml:"hostname"`
		Command     []string          `yaml:"command"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck *struct {
			Test     []string `yaml:"test"`
			Interval string   `yaml:"interval"`
			Retries  int      `yaml:"retries"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestDeployCompose(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	require.NoError(t, err)
	// Extension fields (x-...) hold anchors: resolve them, then drop them
	// before the strict decode.
	var expanded map[string]any
	require.NoError(t, yaml.Unmarshal(b, &expanded))
	for k := range expanded {
		if strings.HasPrefix(k, "x-") {
			delete(expanded, k)
		}
	}
	clean, err := yaml.Marshal(expanded)
	require.NoError(t, err)
	var cf composeFile
	dec := yaml.NewDecoder(bytes.NewReader(clean))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cf))

	require.True(t, strings.HasPrefix(cf.Services["minio"].Image, "quay.io/minio/minio:"), "MinIO from its official image")
	commands := map[string]int{}
	for name, s := range cf.Services {
		if s.Image != "strata:local" {
			continue
		}
		require.Equal(t, "deploy/Dockerfile", s.Build["dockerfile"], name)
		p, err := parseStrataArgs(s.Command)
		require.NoError(t, err, "service %s: strata %s", name, strings.Join(s.Command, " "))
		commands[p.name]++
		listen := map[int]bool{}
		for _, port := range p.listen {
			listen[port] = true
		}
		for _, mapping := range s.Ports {
			parts := strings.Split(mapping, ":")
			port, err := strconv.Atoi(parts[len(parts)-1])
			require.NoError(t, err)
			require.True(t, listen[port], "service %s publishes %s, which it does not listen on (%v)", name, mapping, p.listen)
		}
		if p.name == "receive" {
			// Peers reach a receiver by its advertised addresses.
			host, _, err := net.SplitHostPort(p.flags["cluster.advertise-address"])
			require.NoError(t, err)
			require.Equal(t, s.Hostname, host, name)
			require.Equal(t, s.Hostname, p.flags["cluster.node-name"], name)
		}
	}
	require.Equal(t, map[string]int{"receive": 3, "query": 1, "query-frontend": 1, "store": 1, "compact": 1, "rule": 1}, commands)
}

// dockerfile is a parsed Dockerfile: its instructions by stage.
type dockerStage struct {
	from  string
	name  string
	instr [][2]string // instruction, arguments
}

func parseDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var stages []dockerStage
	sc := bufio.NewScanner(f)
	var cont string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cont += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, cont = cont+line, ""
		instr, args, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		if instr == "FROM" {
			fields := strings.Fields(args)
			s := dockerStage{from: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
			continue
		}
		require.NotEmpty(t, stages, "%s before FROM", instr)
		stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, [2]string{instr, args})
	}
	require.NoError(t, sc.Err())
	return stages
}

// defaultListenPorts returns the default port of every listening address
// flag of every strata command.
func defaultListenPorts(t *testing.T) map[int]bool {
	app := kingpin.New("strata", "")
	registerCommands(app)
	ports := map[int]bool{}
	var walk func(cmds []*kingpin.CmdModel)
	walk = func(cmds []*kingpin.CmdModel) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				if !isListenFlag(f.Name) || len(f.Default) == 0 || f.Default[0] == "" {
					continue
				}
				_, port, err := net.SplitHostPort(f.Default[0])
				require.NoError(t, err)
				n, err := strconv.Atoi(port)
				require.NoError(t, err)
				ports[n] = true
			}
			walk(c.Commands)
		}
	}
	walk(app.Model().Commands)
	return ports
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(deployDir, "Dockerfile"))
	require.Len(t, stages, 2)
	build, final := stages[0], stages[1]

	// The final stage: a minimal base without a shell or libc, a non-root
	// user, the binary as the entry point, and the ports the flags open.
	require.True(t, strings.HasPrefix(final.from, "gcr.io/distroless/static") || final.from == "scratch", final.from)
	var user, entrypoint string
	exposed := map[int]bool{}
	for _, in := range final.instr {
		switch in[0] {
		case "USER":
			user = in[1]
		case "ENTRYPOINT":
			entrypoint = in[1]
		case "EXPOSE":
			for _, p := range strings.Fields(in[1]) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/udp"))
				require.NoError(t, err)
				exposed[n] = true
			}
		case "RUN":
			t.Fatalf("the final stage runs %q: it has no shell", in[1])
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	require.NotContains(t, []string{"", "0", "root"}, uid, "the image runs as root")
	require.Equal(t, `["/usr/local/bin/strata"]`, entrypoint)
	require.Equal(t, defaultListenPorts(t), exposed, "EXPOSE is not the set of the default listening ports")

	if testing.Short() {
		t.Skip("building the image's binary takes a while")
	}
	// Run the build stage's go build as the Dockerfile does (sh -c, from the
	// repository root, with the ARG defaults), writing into a temporary
	// directory instead of /out.
	var goBuild string
	env := os.Environ()
	for _, in := range build.instr {
		if in[0] == "ARG" {
			env = append(env, in[1])
		}
		if in[0] == "RUN" && strings.Contains(in[1], "go build") {
			goBuild = in[1]
		}
	}
	require.NotEmpty(t, goBuild, "no go build in the build stage")
	require.Contains(t, goBuild, "-o /out/strata")
	out := t.TempDir()
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(goBuild, "/out/", out+"/"))
	cmd.Dir = filepath.Join(deployDir, "..")
	cmd.Env = env
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)

	bin, err := elf.Open(filepath.Join(out, "strata"))
	require.NoError(t, err)
	defer bin.Close()
	for _, p := range bin.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary needs a dynamic loader")
	}
	libs, err := bin.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs, "the binary needs shared libraries")
	v, err := exec.Command(filepath.Join(out, "strata"), "--version").CombinedOutput()
	require.NoError(t, err, "%s", v)
	require.Contains(t, string(v), "strata, version dev")
}

func TestDeployPrometheusConfigs(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool is required: run .ci/install-deps")
	files, err := filepath.Glob(filepath.Join(deployDir, "prometheus", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			// Syntax only: the certificate and token files are the user's.
			out, err := exec.Command(promtool, "check", "config", "--syntax-only", f).CombinedOutput()
			require.NoError(t, err, "%s", out)
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			var cfg struct {
				RemoteWrite []struct {
					URL         string         `yaml:"url"`
					QueueConfig map[string]any `yaml:"queue_config"`
				} `yaml:"remote_write"`
			}
			require.NoError(t, yaml.Unmarshal(b, &cfg))
			require.NotEmpty(t, cfg.RemoteWrite)
			for _, rw := range cfg.RemoteWrite {
				require.True(t, strings.HasSuffix(rw.URL, "/api/v1/receive"), rw.URL)
				require.NotEmpty(t, rw.QueueConfig, "the queue is tuned")
			}
		})
	}
}
