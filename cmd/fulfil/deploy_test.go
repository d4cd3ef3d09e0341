package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The deploy/ material is checked against the code, so it cannot drift: every environment
// variable it sets is one the binary reads, probes hit the real endpoints on the real port, and
// commands name real subcommands.

const deployDir = "../../deploy"

type k8sContainer struct {
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name string `yaml:"name"`
	} `yaml:"env"`
	LivenessProbe  probe `yaml:"livenessProbe"`
	ReadinessProbe probe `yaml:"readinessProbe"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sDoc struct {
	Kind string            `yaml:"kind"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Secrets     []string          `yaml:"secrets"`
	} `yaml:"services"`
	Secrets map[string]any `yaml:"secrets"`
}

func envNames() []string {
	var out []string
	for _, b := range envBindings {
		out = append(out, b.env)
	}
	return out
}

func isCommand(name string) bool {
	for _, c := range commands() {
		if c.name == name {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkK8s returns what is wrong with the manifests of deploy/k8s.
func checkK8s(files map[string]string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	known := envNames()
	httpPort := ""
	var containers []k8sContainer
	for name, text := range files {
		if !strings.HasSuffix(name, ".yaml") || name == "kustomization.yaml" {
			continue
		}
		var doc k8sDoc
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			bad("%s: %v", name, err)
			continue
		}
		switch doc.Kind {
		case "ConfigMap":
			for k, v := range doc.Data {
				if !slices.Contains(known, k) {
					bad("%s: ConfigMap key %s is not a fulfil setting", name, k)
				}
				if k == "FULFIL_HTTP_ADDR" {
					_, httpPort, _ = net.SplitHostPort(v)
				}
			}
		case "Deployment":
			containers = append(containers, doc.Spec.Template.Spec.Containers...)
		}
	}
	if len(containers) == 0 {
		bad("no Deployment container found")
	}
	for _, c := range containers {
		if len(c.Args) == 0 || !isCommand(c.Args[0]) {
			bad("container args %v do not start with a fulfil command", c.Args)
		}
		for _, e := range c.Env {
			if !slices.Contains(known, e.Name) {
				bad("container env %s is not a fulfil setting", e.Name)
			}
		}
		ports := map[string]int{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		for _, pr := range []struct {
			probe probe
			path  string
		}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
			if pr.probe.HTTPGet.Path != pr.path {
				bad("probe path %q, want %s", pr.probe.HTTPGet.Path, pr.path)
			}
			port := fmt.Sprint(pr.probe.HTTPGet.Port)
			if p, ok := ports[port]; ok {
				port = fmt.Sprint(p)
			}
			if port != httpPort {
				bad("probe %s targets port %s, but FULFIL_HTTP_ADDR listens on %q", pr.path, port, httpPort)
			}
		}
	}
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal([]byte(files["kustomization.yaml"]), &kust); err != nil {
		bad("kustomization.yaml: %v", err)
	}
	for name := range files {
		if strings.HasSuffix(name, ".yaml") && name != "kustomization.yaml" && !slices.Contains(kust.Resources, name) {
			bad("kustomization.yaml does not list %s", name)
		}
	}
	for _, r := range kust.Resources {
		if _, ok := files[r]; !ok {
			bad("kustomization.yaml lists %s, which does not exist", r)
		}
	}
	return problems
}

// checkCompose returns what is wrong with deploy/compose.yaml.
func checkCompose(text string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var cf composeFile
	if err := yaml.Unmarshal([]byte(text), &cf); err != nil {
		return []string{err.Error()}
	}
	known := envNames()
	workers := 0
	for name, svc := range cf.Services {
		if svc.Image != "fulfil" {
			continue
		}
		if len(svc.Command) == 0 || !isCommand(svc.Command[0]) {
			bad("service %s: command %v is not a fulfil command", name, svc.Command)
			continue
		}
		if svc.Command[0] == "worker" {
			workers++
		}
		for k := range svc.Environment {
			if !slices.Contains(known, k) {
				bad("service %s: %s is not a fulfil setting", name, k)
			}
		}
		for _, s := range svc.Secrets {
			if _, ok := cf.Secrets[s]; !ok {
				bad("service %s: secret %s is not declared", name, s)
			}
		}
	}
	if workers < 2 {
		bad("%d worker services, want at least 2", workers)
	}
	return problems
}

// checkDockerfile returns what is wrong with deploy/Dockerfile.
func checkDockerfile(text string) []string {
	var problems []string
	if !strings.Contains(text, "./cmd/fulfil") {
		problems = append(problems, "Dockerfile does not build ./cmd/fulfil")
	}
	m := regexp.MustCompile(`(?m)^CMD \["([a-z]+)"`).FindStringSubmatch(text)
	if m == nil || !isCommand(m[1]) {
		problems = append(problems, "Dockerfile CMD does not name a fulfil command")
	}
	if !strings.Contains(text, "USER nonroot") {
		problems = append(problems, "Dockerfile does not run as non-root")
	}
	return problems
}

func k8sFiles(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(deployDir, "k8s"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		files[e.Name()] = readFile(t, filepath.Join("k8s", e.Name()))
	}
	return files
}

func TestDeployMatchesTheCode(t *testing.T) {
	if p := checkK8s(k8sFiles(t)); len(p) > 0 {
		t.Errorf("deploy/k8s:\n%s", strings.Join(p, "\n"))
	}
	if p := checkCompose(readFile(t, "compose.yaml")); len(p) > 0 {
		t.Errorf("deploy/compose.yaml:\n%s", strings.Join(p, "\n"))
	}
	if p := checkDockerfile(readFile(t, "Dockerfile")); len(p) > 0 {
		t.Errorf("deploy/Dockerfile:\n%s", strings.Join(p, "\n"))
	}
}

// Each check must catch a drifted manifest.
func TestDeployChecksCatchDrift(t *testing.T) {
	tests := []struct {
		name string
		file string // k8s file to edit, or compose.yaml / Dockerfile
		old  string
		new  string
		want string
	}{
		{name: "renamed env var", file: "configmap.yaml", old: "FULFIL_LOG_LEVEL:", new: "FULFIL_LOGLEVEL:", want: "FULFIL_LOGLEVEL is not a fulfil setting"},
		{name: "probe path", file: "deployment.yaml", old: "path: /readyz", new: "path: /ready", want: `probe path "/ready"`},
		{name: "port drift", file: "configmap.yaml", old: "0.0.0.0:8080", new: "0.0.0.0:9090", want: "FULFIL_HTTP_ADDR listens on"},
		{name: "unknown command", file: "deployment.yaml", old: `args: ["worker"]`, new: `args: ["serve"]`, want: "do not start with a fulfil command"},
		{name: "unlisted manifest", file: "kustomization.yaml", old: "  - pdb.yaml\n", new: "", want: "does not list pdb.yaml"},
		{name: "compose env", file: "compose.yaml", old: "FULFIL_CONCURRENCY:", new: "FULFIL_WORKERS:", want: "FULFIL_WORKERS is not a fulfil setting"},
		{name: "dockerfile cmd", file: "Dockerfile", old: `CMD ["worker"]`, new: `CMD ["run"]`, want: "CMD does not name a fulfil command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var problems []string
			switch tt.file {
			case "compose.yaml":
				problems = checkCompose(mustReplace(t, readFile(t, tt.file), tt.old, tt.new))
			case "Dockerfile":
				problems = checkDockerfile(mustReplace(t, readFile(t, tt.file), tt.old, tt.new))
			default:
				files := k8sFiles(t)
				files[tt.file] = mustReplace(t, files[tt.file], tt.old, tt.new)
				problems = checkK8s(files)
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems %q, want one containing %q", problems, tt.want)
			}
		})
	}
}

func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}
